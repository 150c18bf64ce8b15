#pragma OPENCL EXTENSION cl_khr_fp64 : enable  
#pragma OPENCL EXTENSION cl_khr_fp16 : enable  
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable  
__kernel void ropeKvF16(__global long *_kernel_context, __constant uchar *_constant_region, __local uchar *_local_region, __global int *_atomics, __global uchar *q, __global uchar *k, __global uchar *v, __global uchar *keyCache, __global uchar *valueCache, __global uchar *rope, __global uchar *state, __private int qDim, __private int kvDim, __private int headDim)
{
  long l_24, l_22, l_23, l_60, l_29, l_61, l_26, l_27, l_59, l_64, l_65, l_30, l_31, l_69, l_66, l_70, l_71, l_76, l_77, l_75, l_20, l_21, l_19; 
  bool b_68, b_33, b_46; 
  int i_63, i_25, i_58, i_15, i_16, i_13, i_45, i_14, i_17, i_18, i_8, i_11, i_12, i_9, i_10, i_74; 
  float f_50, f_48, f_55, f_54, f_53, f_52, f_43, f_42, f_41, f_73, f_40, f_47, f_44, f_35, f_34, f_39, f_37, f_57, f_56; 
  ulong ul_72, ul_78, ul_1, ul_0, ul_32, ul_3, ul_67, ul_2, ul_5, ul_4, ul_36, ul_7, ul_6, ul_38, ul_28, ul_62, ul_49, ul_51; 
  half half_79; 

  // BLOCK 0
  ul_0  =  (ulong) q;
  ul_1  =  (ulong) k;
  ul_2  =  (ulong) v;
  ul_3  =  (ulong) keyCache;
  ul_4  =  (ulong) valueCache;
  ul_5  =  (ulong) rope;
  ul_6  =  (ulong) state;
  ul_7  =  ul_6 + 20L;
  i_8  =  *((__global int *) ul_7);
  i_9  =  get_global_id(0);
  i_10  =  i_9 % 8;
  i_11  =  i_10 << 1;
  i_12  =  i_9 >> 31;
  i_13  =  i_12 >> 29;
  i_14  =  i_13 + i_9;
  i_15  =  i_14 >> 3;
  i_16  =  i_15 << 4;
  i_17  =  i_11 + i_16;
  i_18  =  i_17 + 1;
  l_19  =  (long) i_18;
  l_20  =  l_19 + 4L;
  l_21  =  l_20 << 2;
  l_22  =  (long) i_17;
  l_23  =  l_22 + 4L;
  l_24  =  l_23 << 2;
  i_25  =  i_11 + 5;
  l_26  =  (long) i_25;
  l_27  =  l_26 << 2;
  ul_28  =  ul_5 + l_27;
  l_29  =  (long) i_11;
  l_30  =  l_29 + 4L;
  l_31  =  l_30 << 2;
  ul_32  =  ul_5 + l_31;
  b_33  =  i_9 < 64;
  if(b_33)
  {
    // BLOCK 1
    f_34  =  *((__global float *) ul_32);
    f_35  =  *((__global float *) ul_28);
    ul_36  =  ul_0 + l_24;
    f_37  =  *((__global float *) ul_36);
    ul_38  =  ul_0 + l_21;
    f_39  =  *((__global float *) ul_38);
    f_40  =  f_34 * f_37;
    f_41  =  f_35 * f_39;
    f_42  =  f_40 - f_41;
    *((__global float *) ul_36)  =  f_42;
    f_43  =  f_34 * f_39;
    f_44  =  fma(f_35, f_37, f_43);
    *((__global float *) ul_38)  =  f_44;
  }  // B0
  else
  {
    // BLOCK 2
  }  // B0
  // BLOCK 3 MERGES [2 1 ]
  i_45  =  i_8 << 4;
  b_46  =  i_9 < 8;
  if(b_46)
  {
    // BLOCK 4
    f_47  =  *((__global float *) ul_32);
    f_48  =  *((__global float *) ul_28);
    ul_49  =  ul_1 + l_24;
    f_50  =  *((__global float *) ul_49);
    ul_51  =  ul_1 + l_21;
    f_52  =  *((__global float *) ul_51);
    f_53  =  f_47 * f_50;
    f_54  =  f_48 * f_52;
    f_55  =  f_53 - f_54;
    *((__global float *) ul_49)  =  f_55;
    f_56  =  f_47 * f_52;
    f_57  =  fma(f_48, f_50, f_56);
    *((__global float *) ul_51)  =  f_57;
    i_58  =  i_45 + i_17;
    l_59  =  (long) i_58;
    l_60  =  l_59 + 8L;
    l_61  =  l_60 << 1;
    ul_62  =  ul_3 + l_61;
    *((__global half *) ul_62)  =  f_55;
    i_63  =  i_58 + 1;
    l_64  =  (long) i_63;
    l_65  =  l_64 + 8L;
    l_66  =  l_65 << 1;
    ul_67  =  ul_3 + l_66;
    *((__global half *) ul_67)  =  f_57;
  }  // B3
  else
  {
    // BLOCK 5
  }  // B3
  // BLOCK 6 MERGES [5 4 ]
  b_68  =  i_9 < 16;
  if(b_68)
  {
    // BLOCK 7
    l_69  =  (long) i_9;
    l_70  =  l_69 + 4L;
    l_71  =  l_70 << 2;
    ul_72  =  ul_2 + l_71;
    f_73  =  *((__global float *) ul_72);
    i_74  =  i_45 + i_9;
    l_75  =  (long) i_74;
    l_76  =  l_75 + 8L;
    l_77  =  l_76 << 1;
    ul_78  =  ul_4 + l_77;
    half_79  =  (half) f_73;
    *((__global half *) ul_78)  =  half_79;
  }  // B6
  else
  {
    // BLOCK 8
  }  // B6
  // BLOCK 9 MERGES [8 7 ]
  return;
}  //  kernel
