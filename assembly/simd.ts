// Vector helpers shared by the kernels: multiply-add (fused in the relaxed build), exp, tanh,
// sigmoid, the activations and their derivatives written with the output a = g(z) (MATH.md).
import { ACT_LEAKY_RELU, ACT_RELU, ACT_SIGMOID, ACT_TANH } from './abi';

// a·b + c. The relaxed build lets the engine emit one FMA (the result may differ from the plain
// build in the last bit, which the tests allow for).
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// c − a·b
// @ts-ignore: decorator
@inline export function nmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_nmadd(a, b, c);
  return f32x4.sub(c, f32x4.mul(a, b));
}

// e^x per lane, |rel. error| ≲ 2e-7 over the clamped range. x = n·ln2 + r with |r| ≤ ln2/2,
// e^r by its Taylor polynomial of degree 6 (the next term is < 1.2e-7), 2^n put into the exponent
// bits. The clamp keeps n in [−126, 127], so the result never becomes inf or NaN (for x = NaN the
// result is NaN through r).
// @ts-ignore: decorator
@inline export function vexp(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.33654)), f32x4.splat(88.37626));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.442695041)));
  // ln2 split in two so that n·ln2_hi is exact (Cody–Waite)
  let r = nmadd(n, f32x4.splat(0.693359375), x);
  r = nmadd(n, f32x4.splat(-2.12194440e-4), r);
  let p = f32x4.splat(1.0 / 720.0);
  p = madd(p, r, f32x4.splat(1.0 / 120.0));
  p = madd(p, r, f32x4.splat(1.0 / 24.0));
  p = madd(p, r, f32x4.splat(1.0 / 6.0));
  p = madd(p, r, f32x4.splat(0.5));
  p = madd(p, r, f32x4.splat(1.0));
  p = madd(p, r, f32x4.splat(1.0));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

// 1 / (1 + e^−z)
// @ts-ignore: decorator
@inline export function vsigmoid(z: v128): v128 {
  const one = f32x4.splat(1.0);
  return f32x4.div(one, f32x4.add(one, vexp(f32x4.neg(z))));
}

// tanh z. Near 0 the form 1 − 2/(e^{2|z|} + 1) cancels, so |z| < 0.5 uses the odd Taylor series up
// to z^15 (next term < 5e-9 there); elsewhere the exp form, whose cancellation costs < 1 bit.
// @ts-ignore: decorator
@inline export function vtanh(z: v128): v128 {
  const ax = f32x4.abs(z);
  const one = f32x4.splat(1.0);
  const big = f32x4.sub(one, f32x4.div(f32x4.splat(2.0), f32x4.add(vexp(f32x4.add(ax, ax)), one)));
  const x2 = f32x4.mul(ax, ax);
  let p = f32x4.splat(-0.0014558343870513183); // −929569/638512875
  p = madd(p, x2, f32x4.splat(0.0035921280365724810)); // 21844/6081075
  p = madd(p, x2, f32x4.splat(-0.0088632355299021966)); // −1382/155925
  p = madd(p, x2, f32x4.splat(0.021869488536155203)); // 62/2835
  p = madd(p, x2, f32x4.splat(-0.053968253968253968)); // −17/315
  p = madd(p, x2, f32x4.splat(0.13333333333333333)); // 2/15
  p = madd(p, x2, f32x4.splat(-0.33333333333333333)); // −1/3
  const small = madd(f32x4.mul(p, x2), ax, ax);
  const r = v128.bitselect(small, big, f32x4.lt(ax, f32x4.splat(0.5)));
  // copy the sign of z back (tanh is odd)
  const sign = v128.and(z, f32x4.splat(-0.0));
  return v128.or(r, sign);
}

// g(z) for every code but softmax (taken over a row by the caller, linear here).
// @ts-ignore: decorator
@inline export function vactivate(z: v128, act: i32, slope: v128): v128 {
  if (act == ACT_SIGMOID) return vsigmoid(z);
  if (act == ACT_TANH) return vtanh(z);
  if (act == ACT_RELU) return f32x4.max(z, f32x4.splat(0.0));
  if (act == ACT_LEAKY_RELU) {
    return v128.bitselect(z, f32x4.mul(z, slope), f32x4.gt(z, f32x4.splat(0.0)));
  }
  return z;
}

// g'(z) from a = g(z)
// @ts-ignore: decorator
@inline export function vderivative(a: v128, act: i32, slope: v128): v128 {
  const one = f32x4.splat(1.0);
  if (act == ACT_SIGMOID) return f32x4.mul(a, f32x4.sub(one, a));
  if (act == ACT_TANH) return nmadd(a, a, one);
  if (act == ACT_RELU) return v128.and(f32x4.gt(a, f32x4.splat(0.0)), one);
  if (act == ACT_LEAKY_RELU) return v128.bitselect(one, slope, f32x4.gt(a, f32x4.splat(0.0)));
  return one;
}

// Scalar twins through lane 0, so that row tails get exactly the vector code's numbers.
// @ts-ignore: decorator
@inline export function expScalar(x: f32): f32 {
  return f32x4.extract_lane(vexp(f32x4.splat(x)), 0);
}

// @ts-ignore: decorator
@inline export function derivativeScalar(a: f32, act: i32, alpha: f32): f32 {
  return f32x4.extract_lane(vderivative(f32x4.splat(a), act, f32x4.splat(alpha)), 0);
}
