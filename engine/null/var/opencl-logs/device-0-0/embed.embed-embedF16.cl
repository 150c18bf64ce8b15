#pragma OPENCL EXTENSION cl_khr_fp64 : enable  
#pragma OPENCL EXTENSION cl_khr_fp16 : enable  
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable  
__kernel void embedF16(__global long *_kernel_context, __constant uchar *_constant_region, __local uchar *_local_region, __global int *_atomics, __global uchar *table, __global uchar *state, __global uchar *x, __private int dim)
{
  long l_9, l_10, l_11, l_16, l_14, l_15; 
  bool b_4; 
  int i_3, i_7, i_8, i_6; 
  float f_18; 
  ulong ul_12, ul_1, ul_17, ul_0, ul_2, ul_5; 
  half half_13; 

  // BLOCK 0
  ul_0  =  (ulong) table;
  ul_1  =  (ulong) state;
  ul_2  =  (ulong) x;
  i_3  =  get_global_id(0);
  b_4  =  i_3 < 64;
  if(b_4)
  {
    // BLOCK 1
    ul_5  =  ul_1 + 16L;
    i_6  =  *((__global int *) ul_5);
    i_7  =  i_6 << 6;
    i_8  =  i_7 + i_3;
    l_9  =  (long) i_8;
    l_10  =  l_9 + 8L;
    l_11  =  l_10 << 1;
    ul_12  =  ul_0 + l_11;
    half_13  =  *((__global half *) ul_12);
    l_14  =  (long) i_3;
    l_15  =  l_14 + 4L;
    l_16  =  l_15 << 2;
    ul_17  =  ul_2 + l_16;
    f_18  =  convert_float((float) half_13);
    *((__global float *) ul_17)  =  f_18;
  }  // B0
  else
  {
    // BLOCK 2
  }  // B0
  // BLOCK 3 MERGES [2 1 ]
  return;
}  //  kernel
