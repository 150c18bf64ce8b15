#pragma OPENCL EXTENSION cl_khr_fp64 : enable  
#pragma OPENCL EXTENSION cl_khr_fp16 : enable  
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable  
__kernel void matvecResidualF16(__global long *_kernel_context, __constant uchar *_constant_region, __local uchar *_local_region, __global int *_atomics, __global uchar *w, __global uchar *x, __global uchar *y, __private int rows, __private int cols)
{
  long l_28, l_26, l_27, l_36, l_37, l_38, l_12, l_13, l_45, l_17, l_14, l_46, l_47, l_18, l_19; 
  bool b_33, b_7, b_43, b_44; 
  int i_31, i_32, i_29, i_30, i_35, i_4, i_24, i_8, i_5, i_6, i_11, i_41, i_10; 
  float f_34, f_50, f_49, f_23, f_39, f_22, f_21, f_42, f_25, f_9, f_40; 
  ulong ul_15, ul_1, ul_0, ul_48, ul_2, ul_20; 
  half half_16; 

  // BLOCK 0
  ul_0  =  (ulong) w;
  ul_1  =  (ulong) x;
  ul_2  =  (ulong) y;
  __local float adf_3[256];
  i_4  =  get_local_size(0);
  i_5  =  get_local_id(0);
  i_6  =  get_group_id(0);
  b_7  =  i_6 < 96;
  if(b_7)
  {
    // BLOCK 1
    i_8  =  i_6 * 176;
    // BLOCK 2 MERGES [1 3 ]
    f_9  =  0.0F;
    i_10  =  i_5;
    for(;i_10 < 176;)
    {
      // BLOCK 3
      i_11  =  i_8 + i_10;
      l_12  =  (long) i_11;
      l_13  =  l_12 + 8L;
      l_14  =  l_13 << 1;
      ul_15  =  ul_0 + l_14;
      half_16  =  *((__global half *) ul_15);
      l_17  =  (long) i_10;
      l_18  =  l_17 + 4L;
      l_19  =  l_18 << 2;
      ul_20  =  ul_1 + l_19;
      f_21  =  *((__global float *) ul_20);
      f_22  =  convert_float((float) half_16);
      f_23  =  fma(f_22, f_21, f_9);
      i_24  =  i_4 + i_10;
      f_9  =  f_23;
      i_10  =  i_24;
    }  // B2
    // BLOCK 4
    f_25  =  f_9;
  }  // B0
  else
  {
    // BLOCK 5
    f_25  =  0.0F;
  }  // B0
  // BLOCK 6 MERGES [4 5 ]
  l_26  =  (long) i_5;
  l_27  =  l_26 << 2;
  l_28  =  l_27 + 16L;
  adf_3[l_28]  =  f_25;
  barrier(CLK_LOCAL_MEM_FENCE);
  i_29  =  i_4 >> 31;
  i_30  =  i_29 + i_4;
  i_31  =  i_30 >> 1;
  // BLOCK 7 MERGES [6 11 ]
  i_32  =  i_31;
  for(;i_32 >= 1;)
  {
    // BLOCK 8
    b_33  =  i_5 < i_32;
    if(b_33)
    {
      // BLOCK 9
      f_34  =  adf_3[l_28];
      i_35  =  i_32 + i_5;
      l_36  =  (long) i_35;
      l_37  =  l_36 << 2;
      l_38  =  l_37 + 16L;
      f_39  =  adf_3[l_38];
      f_40  =  f_34 + f_39;
      adf_3[l_28]  =  f_40;
    }  // B8
    else
    {
      // BLOCK 10
    }  // B8
    // BLOCK 11 MERGES [10 9 ]
    barrier(CLK_LOCAL_MEM_FENCE);
    i_41  =  i_32 >> 1;
    i_32  =  i_41;
  }  // B7
  // BLOCK 12
  f_42  =  adf_3[16L];
  barrier(CLK_LOCAL_MEM_FENCE);
  b_43  =  i_5 == 0;
  if(b_43)
  {
    // BLOCK 13
    b_44  =  i_6 < 96;
    if(b_44)
    {
      // BLOCK 14
      l_45  =  (long) i_6;
      l_46  =  l_45 + 4L;
      l_47  =  l_46 << 2;
      ul_48  =  ul_2 + l_47;
      f_49  =  *((__global float *) ul_48);
      f_50  =  f_42 + f_49;
      *((__global float *) ul_48)  =  f_50;
      return;
    }  // B13
    else
    {
      // BLOCK 15
      return;
    }  // B13
  }  // B12
  else
  {
    // BLOCK 16
  }  // B12
  // BLOCK 17 MERGES [16 15 14 ]
  return;
}  //  kernel
