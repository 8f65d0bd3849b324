// Fused CPU kernel for EdgeConvolution + aggregation (the torch reference is in dens_calc/nn/blocks.py):
//
//   K_e[k, g, i]   = sum_{(p, j, i, k) in CG} b[e, g, p] Y[e, j] CG[p, j, i, k]     (never stored)
//   agg[n, k, c]   = sum_{e: receiver[e] = n} sum_{g, i} K_e[k, g, i] a[e, g, c] h[sender[e], i, c]
//
// and its first derivatives with respect to h, b, Y and a.  Rebuilding each edge's [D_out, G*D_in]
// kernel from the non-zero Clebsch-Gordan entries costs a few hundred operations (the dense GEMM of
// the torch path ~16k), the [D_out, G*D_in] @ [G*D_in, C] product runs as a register-blocked
// micro-GEMM over channel groups, and the gather h[sender] and the scatter into agg happen in
// place, so no [E, D, C] array is ever written: per edge only a[e] (and in the backward pass its
// gradient) streams through memory, the node arrays stay in cache.  Scatters go to per-thread
// node buffers that are summed at the end (no atomics, deterministic for a fixed thread count).
//
// Higher derivatives (force training differentiates the backward pass) need no third kernel: the
// function is linear in each of h, b, Y and a, so dens_calc/nn/fused.py composes them from these two.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace {

// one 256-bit vector of channels via the GCC/Clang vector extension: explicit SIMD without
// intrinsics, so it compiles for any target (split into narrower vectors where needed)
template <typename T>
struct Simd {
  typedef T vec __attribute__((vector_size(32)));
  static constexpr int lanes = 32 / sizeof(T);
  static vec load(const T* p) {
    vec v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void store(T* p, vec v) { std::memcpy(p, &v, sizeof(v)); }
  static void add_to(T* p, vec v) { store(p, load(p) + v); }
  static T sum(vec v) {
    T s = 0;
    for (int l = 0; l < lanes; ++l) s += v[l];
    return s;
  }
};

// channel vectors per step: four independent accumulators per row hide the FMA latency
constexpr int kGroup = 4;

struct Coupling {  // non-zero Clebsch-Gordan entries (rows p, j, i, k of a [4, nnz] index)
  const int64_t *p, *j, *i, *k;
  const void* value;
  int64_t count;
};

struct Dims {
  int64_t N, E, G, P, D_in, D_out, C;
  int64_t gd() const { return G * D_in; }
};

// K[k * G*D_in + g*D_in + i] of one edge from its path weights b[g, p] and harmonics y[j]
template <typename T>
inline void build_kernel(const T* b, const T* y, const Coupling& cg, const Dims& d, T* K) {
  const T* value = static_cast<const T*>(cg.value);
  const int64_t gd = d.gd();
  std::fill(K, K + d.D_out * gd, T(0));
  for (int64_t n = 0; n < cg.count; ++n) {
    const T yv = y[cg.j[n]] * value[n];
    T* row = K + cg.k[n] * gd + cg.i[n];
    for (int64_t g = 0; g < d.G; ++g) row[g * d.D_in] += b[g * d.P + cg.p[n]] * yv;
  }
}

// S[m][v] = a[g, c] h[i, c] (m = g*D_in + i) for the NV channel vectors starting at c0
template <typename T, int NV>
inline void scaled_inputs(const T* a, const T* h, const Dims& d, int64_t c0, typename Simd<T>::vec* S) {
  using V = Simd<T>;
  for (int64_t g = 0; g < d.G; ++g)
    for (int64_t i = 0; i < d.D_in; ++i)
      for (int v = 0; v < NV; ++v)
        S[(g * d.D_in + i) * NV + v] =
            V::load(a + g * d.C + c0 + v * V::lanes) * V::load(h + i * d.C + c0 + v * V::lanes);
}

// out[k, c0..] += sum_m K[k, m] S[m]: two output rows at a time, so each S vector loaded serves two FMAs
template <typename T, int NV>
inline void forward_group(const T* K, const T* a, const T* h, const Dims& d, int64_t c0,
                          typename Simd<T>::vec* S, T* out) {
  using V = Simd<T>;
  using vec = typename V::vec;
  const int64_t gd = d.gd();
  scaled_inputs<T, NV>(a, h, d, c0, S);
  int64_t k = 0;
  for (; k + 2 <= d.D_out; k += 2) {
    vec acc0[NV] = {}, acc1[NV] = {};
    const T *K0 = K + k * gd, *K1 = K0 + gd;
    for (int64_t m = 0; m < gd; ++m) {
      const T k0 = K0[m], k1 = K1[m];
      for (int v = 0; v < NV; ++v) {
        const vec s = S[m * NV + v];
        acc0[v] += k0 * s;
        acc1[v] += k1 * s;
      }
    }
    for (int v = 0; v < NV; ++v) {
      V::add_to(out + k * d.C + c0 + v * V::lanes, acc0[v]);
      V::add_to(out + (k + 1) * d.C + c0 + v * V::lanes, acc1[v]);
    }
  }
  for (; k < d.D_out; ++k) {
    vec acc[NV] = {};
    const T* Kk = K + k * gd;
    for (int64_t m = 0; m < gd; ++m)
      for (int v = 0; v < NV; ++v) acc[v] += Kk[m] * S[m * NV + v];
    for (int v = 0; v < NV; ++v) V::add_to(out + k * d.C + c0 + v * V::lanes, acc[v]);
  }
}

template <typename T, int NV>
inline void backward_group(const T* K, const T* a, const T* h, const T* go, const Dims& d, int64_t c0,
                           typename Simd<T>::vec* S, typename Simd<T>::vec* dK, T* da, T* dh) {
  using V = Simd<T>;
  using vec = typename V::vec;
  const int64_t gd = d.gd();
  scaled_inputs<T, NV>(a, h, d, c0, S);
  // dK[k, m] += go[k] . S[m] over these channels (lane-wise partial sums, reduced once per edge)
  for (int64_t k = 0; k < d.D_out; ++k) {
    vec gk[NV];
    for (int v = 0; v < NV; ++v) gk[v] = V::load(go + k * d.C + c0 + v * V::lanes);
    for (int64_t m = 0; m < gd; ++m) {
      vec t = gk[0] * S[m * NV];
      for (int v = 1; v < NV; ++v) t += gk[v] * S[m * NV + v];
      dK[k * gd + m] += t;
    }
  }
  // back[m] = sum_k K[k, m] go[k];  dh[i] += sum_g a[g] back[g, i];  da[g] = sum_i back[g, i] h[i]
  for (int64_t g = 0; g < d.G; ++g) {
    vec av[NV], dag[NV] = {};
    for (int v = 0; v < NV; ++v) av[v] = V::load(a + g * d.C + c0 + v * V::lanes);
    for (int64_t i = 0; i < d.D_in; ++i) {
      const int64_t m = g * d.D_in + i;
      vec back[NV] = {};
      for (int64_t k = 0; k < d.D_out; ++k) {
        const T kv = K[k * gd + m];
        for (int v = 0; v < NV; ++v) back[v] += kv * V::load(go + k * d.C + c0 + v * V::lanes);
      }
      for (int v = 0; v < NV; ++v) {
        V::add_to(dh + i * d.C + c0 + v * V::lanes, av[v] * back[v]);
        dag[v] += back[v] * V::load(h + i * d.C + c0 + v * V::lanes);
      }
    }
    for (int v = 0; v < NV; ++v) V::store(da + g * d.C + c0 + v * V::lanes, dag[v]);
  }
}

// calls group(c0) on whole groups of kGroup vectors, then single(c0) on the remaining vectors
template <typename T, typename FG, typename F1>
inline void over_channels(int64_t C, FG&& group, F1&& single) {
  const int64_t step = kGroup * Simd<T>::lanes;
  int64_t c0 = 0;
  for (; c0 + step <= C; c0 += step) group(c0);
  for (; c0 < C; c0 += Simd<T>::lanes) single(c0);
}

// Per-thread zeroed node buffers [N, rows, C] for scatter-adds, summed into one tensor at the end.
// Each thread costs one node-sized array (zeroed, then summed): far less than the [E, D, C] arrays
// of the torch path (E is ~15-40 N), but it grows with the thread count.
class NodeBuffers {
 public:
  NodeBuffers(const at::Tensor& like, int64_t rows) : like_(like), rows_(rows) {}
  template <typename T>
  T* mine() {
    // keyed by the thread id of the parallel region; the table grows under a lock (first touch only),
    // so a team larger than at::get_num_threads() (another OpenMP runtime's setting) is still safe
    const size_t tid = static_cast<size_t>(at::get_thread_num());
    std::lock_guard<std::mutex> guard(mutex_);
    if (tid >= buffers_.size()) buffers_.resize(tid + 1);
    at::Tensor& buf = buffers_[tid];
    if (!buf.defined()) buf = at::zeros({like_.size(0), rows_, like_.size(2)}, like_.options());
    return buf.data_ptr<T>();
  }
  at::Tensor sum() const {
    at::Tensor total;
    for (const at::Tensor& buf : buffers_) {
      if (!buf.defined()) continue;
      total = total.defined() ? total.add_(buf) : buf;
    }
    return total.defined() ? total : at::zeros({like_.size(0), rows_, like_.size(2)}, like_.options());
  }

 private:
  at::Tensor like_;
  int64_t rows_;
  std::mutex mutex_;
  std::vector<at::Tensor> buffers_;
};

constexpr int64_t kGrain = 64;  // edges per parallel task at least

template <typename T>
at::Tensor forward_impl(const at::Tensor& h, const int64_t* sender, const int64_t* receiver, const at::Tensor& b,
                        const at::Tensor& y, const at::Tensor& a, const Coupling& cg, const Dims& d) {
  using vec = typename Simd<T>::vec;
  const T *hp = h.data_ptr<T>(), *bp = b.data_ptr<T>(), *yp = y.data_ptr<T>(), *ap = a.data_ptr<T>();
  NodeBuffers agg(h, d.D_out);
  at::parallel_for(0, d.E, kGrain, [&](int64_t begin, int64_t end) {
    T* out = agg.mine<T>();
    std::vector<T> K(d.D_out * d.gd());
    std::vector<vec> S(d.gd() * kGroup);
    for (int64_t e = begin; e < end; ++e) {
      build_kernel<T>(bp + e * d.G * d.P, yp + e * d.D_out, cg, d, K.data());
      const T *ae = ap + e * d.G * d.C, *he = hp + sender[e] * d.D_in * d.C;
      T* oe = out + receiver[e] * d.D_out * d.C;
      over_channels<T>(
          d.C, [&](int64_t c0) { forward_group<T, kGroup>(K.data(), ae, he, d, c0, S.data(), oe); },
          [&](int64_t c0) { forward_group<T, 1>(K.data(), ae, he, d, c0, S.data(), oe); });
    }
  });
  return agg.sum();
}

template <typename T>
std::vector<at::Tensor> backward_impl(const at::Tensor& grad_agg, const at::Tensor& h, const int64_t* sender,
                                      const int64_t* receiver, const at::Tensor& b, const at::Tensor& y,
                                      const at::Tensor& a, const Coupling& cg, const Dims& d) {
  using V = Simd<T>;
  using vec = typename V::vec;
  const T *gop = grad_agg.data_ptr<T>(), *hp = h.data_ptr<T>(), *bp = b.data_ptr<T>(), *yp = y.data_ptr<T>();
  const T* ap = a.data_ptr<T>();
  const T* value = static_cast<const T*>(cg.value);
  at::Tensor grad_b = at::empty_like(b), grad_y = at::empty_like(y), grad_a = at::empty_like(a);
  T *gbp = grad_b.data_ptr<T>(), *gyp = grad_y.data_ptr<T>(), *gap = grad_a.data_ptr<T>();
  NodeBuffers grad_h(h, d.D_in);
  const int64_t gd = d.gd();
  at::parallel_for(0, d.E, kGrain, [&](int64_t begin, int64_t end) {
    T* dh_nodes = grad_h.mine<T>();
    std::vector<T> K(d.D_out * gd);
    std::vector<vec> S(gd * kGroup), dK(d.D_out * gd);
    for (int64_t e = begin; e < end; ++e) {
      const T *be = bp + e * d.G * d.P, *ye = yp + e * d.D_out;
      build_kernel<T>(be, ye, cg, d, K.data());
      std::fill(dK.begin(), dK.end(), vec{});
      const T *ae = ap + e * d.G * d.C, *he = hp + sender[e] * d.D_in * d.C;
      const T* goe = gop + receiver[e] * d.D_out * d.C;
      T *dae = gap + e * d.G * d.C, *dhe = dh_nodes + sender[e] * d.D_in * d.C;
      over_channels<T>(
          d.C,
          [&](int64_t c0) { backward_group<T, kGroup>(K.data(), ae, he, goe, d, c0, S.data(), dK.data(), dae, dhe); },
          [&](int64_t c0) { backward_group<T, 1>(K.data(), ae, he, goe, d, c0, S.data(), dK.data(), dae, dhe); });
      // dL/db and dL/dY through the non-zero couplings (K[k, g, i] += b[g, p] Y[j] CG)
      T *gbe = gbp + e * d.G * d.P, *gye = gyp + e * d.D_out;
      std::fill(gbe, gbe + d.G * d.P, T(0));
      std::fill(gye, gye + d.D_out, T(0));
      for (int64_t n = 0; n < cg.count; ++n) {
        const T yv = ye[cg.j[n]] * value[n];
        const vec* dk = dK.data() + cg.k[n] * gd + cg.i[n];
        T dy = 0;
        for (int64_t g = 0; g < d.G; ++g) {
          const T t = V::sum(dk[g * d.D_in]);
          gbe[g * d.P + cg.p[n]] += t * yv;
          dy += t * be[g * d.P + cg.p[n]];
        }
        gye[cg.j[n]] += dy * value[n];
      }
    }
  });
  return {grad_h.sum(), grad_b, grad_y, grad_a};
}

// validates shapes, dtypes and index ranges; returns the problem dimensions
Dims check(const at::Tensor& h, const at::Tensor& sender, const at::Tensor& receiver, const at::Tensor& b,
           const at::Tensor& y, const at::Tensor& a, const at::Tensor& index, const at::Tensor& value) {
  for (const at::Tensor* t : {&h, &b, &y, &a, &value}) {
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous(), "edge_convolution: inputs must be contiguous CPU tensors");
    TORCH_CHECK(t->scalar_type() == h.scalar_type(), "edge_convolution: inputs must share one dtype");
  }
  for (const at::Tensor* t : {&sender, &receiver, &index})
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous() && t->scalar_type() == at::kLong,
                "edge_convolution: indices must be contiguous int64 CPU tensors (the Python wrapper converts them)");
  TORCH_CHECK(h.dim() == 3 && b.dim() == 3 && y.dim() == 2 && a.dim() == 3, "edge_convolution: bad ranks");
  const Dims d{h.size(0), a.size(0), a.size(1), b.size(2), h.size(1), y.size(1), a.size(2)};
  TORCH_CHECK(h.size(2) == d.C, "edge_convolution: h and a must have the same channels");
  TORCH_CHECK(b.size(0) == d.E && b.size(1) == d.G && y.size(0) == d.E, "edge_convolution: b is [E, G, P], Y [E, D]");
  TORCH_CHECK(sender.dim() == 1 && sender.size(0) == d.E && receiver.dim() == 1 && receiver.size(0) == d.E,
              "edge_convolution: sender and receiver must be [E]");
  TORCH_CHECK(index.dim() == 2 && index.size(0) == 4 && value.dim() == 1 && value.size(0) == index.size(1),
              "edge_convolution: coupling index must be [4, nnz] with one value per entry");
  const int64_t lanes = h.scalar_type() == at::kFloat ? Simd<float>::lanes : Simd<double>::lanes;
  TORCH_CHECK(d.C % lanes == 0, "edge_convolution: channels must be a multiple of ", lanes);
  if (d.E > 0) {
    TORCH_CHECK(sender.min().item<int64_t>() >= 0 && sender.max().item<int64_t>() < d.N &&
                    receiver.min().item<int64_t>() >= 0 && receiver.max().item<int64_t>() < d.N,
                "edge_convolution: edge index out of range");
  }
  if (index.size(1) > 0) {
    const at::Tensor lo = std::get<0>(index.min(1)), hi = std::get<0>(index.max(1));
    const int64_t limits[4] = {d.P, d.D_out, d.D_in, d.D_out};  // p, j (filter), i, k
    for (int r = 0; r < 4; ++r)
      TORCH_CHECK(lo[r].item<int64_t>() >= 0 && hi[r].item<int64_t>() < limits[r],
                  "edge_convolution: coupling index out of range");
  }
  return d;
}

Coupling coupling_of(const at::Tensor& index, const at::Tensor& value) {
  const int64_t* ip = index.data_ptr<int64_t>();
  const int64_t n = index.size(1);
  return {ip, ip + n, ip + 2 * n, ip + 3 * n, value.data_ptr(), n};
}

}  // namespace

at::Tensor edge_convolution_forward(const at::Tensor& h, const at::Tensor& sender, const at::Tensor& receiver,
                                    const at::Tensor& b, const at::Tensor& y, const at::Tensor& a,
                                    const at::Tensor& index, const at::Tensor& value) {
  const Dims d = check(h, sender, receiver, b, y, a, index, value);
  const Coupling cg = coupling_of(index, value);
  const int64_t *sp = sender.data_ptr<int64_t>(), *rp = receiver.data_ptr<int64_t>();
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "edge_convolution_forward",
                             [&] { out = forward_impl<scalar_t>(h, sp, rp, b, y, a, cg, d); });
  return out;
}

std::vector<at::Tensor> edge_convolution_backward(const at::Tensor& grad_agg, const at::Tensor& h,
                                                  const at::Tensor& sender, const at::Tensor& receiver,
                                                  const at::Tensor& b, const at::Tensor& y, const at::Tensor& a,
                                                  const at::Tensor& index, const at::Tensor& value) {
  const Dims d = check(h, sender, receiver, b, y, a, index, value);
  TORCH_CHECK(grad_agg.is_contiguous() && grad_agg.scalar_type() == h.scalar_type() && grad_agg.dim() == 3 &&
                  grad_agg.size(0) == d.N && grad_agg.size(1) == d.D_out && grad_agg.size(2) == d.C,
              "edge_convolution: grad must be a contiguous [N, D_out, C] tensor");
  const Coupling cg = coupling_of(index, value);
  const int64_t *sp = sender.data_ptr<int64_t>(), *rp = receiver.data_ptr<int64_t>();
  std::vector<at::Tensor> grads;
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "edge_convolution_backward",
                             [&] { grads = backward_impl<scalar_t>(grad_agg, h, sp, rp, b, y, a, cg, d); });
  return grads;  // dL/dh, dL/db, dL/dY, dL/da
}

// registered as torch.ops.dens_calc.edge_convolution_{forward,backward} (no Python headers needed)
TORCH_LIBRARY(dens_calc, m) {
  m.def("edge_convolution_forward", &edge_convolution_forward);
  m.def("edge_convolution_backward", &edge_convolution_backward);
}
