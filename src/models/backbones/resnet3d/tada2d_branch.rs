//! The TAda2D residual branch (`TAda2DBlock`, docs/models.md#tada2d): a ResNet bottleneck whose
//! spatial conv is a temporally adaptive [`TAdaConv2d`], calibrated per frame by a
//! [`RouteFuncMLP`], followed by a zero-initialised temporal average-pooling term.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::layers::{msra_fill, Bn, ConvBn, ConvInit, ConvSpec};
use super::{BlockParams, ResNetSpec, Transformation, KEY_BRANCH, KEY_DEPTH, KEY_DOWN_T};
use crate::config::schema::BranchConfig;
use crate::models::ops::{CalDim, RouteFuncMLP, RouteFuncMLPConfig, TAdaConv2d, TAdaConv2dConfig};
use crate::models::taps::{module_path, Taps};
use crate::models::ModelError;

pub(super) const KEY_ROUTE_FUNC_R: &str = "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_R";
pub(super) const KEY_ROUTE_FUNC_K: &str = "VIDEO.BACKBONE.BRANCH.ROUTE_FUNC_K";
pub(super) const KEY_POOL_K: &str = "VIDEO.BACKBONE.BRANCH.POOL_K";
const NEEDED_BY: &str = "the TAda2DBlock branch";

/// The TAda2DBlock keys of VIDEO.BACKBONE.BRANCH, checked against the rest of the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TAda2DSpec {
    /// ROUTE_FUNC_R: the routing function's hidden width is bottleneck width / this.
    pub route_func_r: i64,
    /// ROUTE_FUNC_K: temporal kernels of the routing function's convs `a` and `b` (odd).
    pub route_func_k: [i64; 2],
    /// POOL_K: (t, h, w) kernel of the average pool before `b_avgpool_bn` (odd; stride 1,
    /// padding k // 2, so the shape is kept).
    pub pool_k: [i64; 3],
}

fn odd_positive<const N: usize>(key: &str, v: Option<&Vec<usize>>) -> Result<[i64; N], ModelError> {
    let v = v.ok_or_else(|| ModelError::missing(key, NEEDED_BY))?;
    let bad = || {
        ModelError::invalid(
            key,
            format!("needs {N} odd, positive sizes (an even one changes T), got {v:?}"),
        )
    };
    let arr = <[usize; N]>::try_from(v.as_slice()).map_err(|_| bad())?;
    let mut out = [0i64; N];
    for (dst, &k) in out.iter_mut().zip(&arr) {
        *dst = i64::try_from(k)
            .ok()
            .filter(|k| k % 2 == 1)
            .ok_or_else(bad)?;
    }
    Ok(out)
}

impl TAda2DSpec {
    /// Reads ROUTE_FUNC_R, ROUTE_FUNC_K and POOL_K (the reference has no defaults for them: its
    /// TAda2D configs set [3, 3], 4 and [3, 1, 1]) and checks what the reference would only
    /// trip over at the first forward pass.
    pub fn from_config(b: &BranchConfig, spec: &ResNetSpec) -> Result<Self, ModelError> {
        // The reference's TAda2DBlock defines no simple block: for DEPTH < 50 it builds an
        // empty branch that fails at the first forward.
        if spec.transformation != Transformation::Bottleneck {
            return Err(ModelError::invalid(
                KEY_DEPTH,
                format!(
                    "{KEY_BRANCH} = TAda2DBlock only defines the bottleneck block, which needs \
                     DEPTH 50, 101 or 152; got a depth with {:?} blocks per stage",
                    spec.blocks
                ),
            ));
        }
        // `b` never strides in time, so a temporally downsampling shortcut would not match it.
        if let Some(s) = (1..spec.downsampling.len())
            .find(|&s| spec.downsampling[s] && spec.downsampling_temporal[s])
        {
            return Err(ModelError::invalid(
                KEY_DOWN_T,
                format!(
                    "TAda2DBlock never downsamples in time, but entry {s} (conv{}) asks for it",
                    s + 1
                ),
            ));
        }
        let route_func_r = b
            .route_func_r
            .ok_or_else(|| ModelError::missing(KEY_ROUTE_FUNC_R, NEEDED_BY))?;
        let route_func_r = i64::try_from(route_func_r)
            .ok()
            .filter(|r| *r >= 1)
            .ok_or_else(|| ModelError::invalid(KEY_ROUTE_FUNC_R, "must be at least 1"))?;
        let ratio = spec.expansion_ratio.unwrap_or(1).max(1);
        if let Some(f) = spec.num_filters[1..]
            .iter()
            .find(|&&f| f / ratio / route_func_r == 0)
        {
            return Err(ModelError::invalid(
                KEY_ROUTE_FUNC_R,
                format!(
                    "{route_func_r} leaves the routing function no hidden channel in a stage of \
                     {f} filters (bottleneck width {})",
                    f / ratio
                ),
            ));
        }
        Ok(Self {
            route_func_r,
            route_func_k: odd_positive(KEY_ROUTE_FUNC_K, b.route_func_k.as_ref())?,
            pool_k: odd_positive(KEY_POOL_K, b.pool_k.as_ref())?,
        })
    }
}

/// `TAda2DBlock` (module `conv_branch`), width m = num_filters / EXPANSION_RATIO:
///
/// ```text
/// y     = relu(a_bn(a(x)))                       1x1x1, dim_in -> m
/// alpha = b_rf(y)                                per-frame calibration, on y before any stride
/// z     = b(y, alpha)                            TAdaConv2d (1, k_h, k_w), stride (1, s, s)
/// z     = relu(b_bn(z) + b_avgpool_bn(avgpool(z)))
/// out   = c_bn(c(z))                             1x1x1, m -> num_filters
/// ```
///
/// `b_avgpool_bn` starts at weight 0 / bias 0 and `b_rf.b` at 0, so at initialisation the block is
/// a plain ResNet bottleneck; both are listed by [`skip_init`](Self::skip_init), and the
/// backbone's Kaiming initialiser (applied here to `b_rf.g` and `b_rf.a`) leaves them alone.
/// `b.weight` keeps TAdaConv2d's own init, as in the reference.
#[derive(Debug)]
pub struct TAda2DBranch {
    a: ConvBn,
    b: TAdaConv2d,
    b_rf: RouteFuncMLP,
    b_bn: Bn,
    b_avgpool_bn: Bn,
    c: ConvBn,
    pool_k: [i64; 3],
    /// BN.FREEZE also holds for the routing function's BN (the reference's `model.train()`
    /// puts every BatchNorm3d back into eval).
    freeze_bn: bool,
    /// Module paths of `b_rf` and `b`, for [`Taps`].
    rf_tap: String,
    b_tap: String,
    skip_init: Vec<String>,
}

fn op_error(e: crate::models::ops::OpError) -> ModelError {
    ModelError::invalid(KEY_BRANCH, format!("TAda2DBlock: {e}"))
}

impl TAda2DBranch {
    pub fn new(path: &nn::Path, spec: &TAda2DSpec, p: &BlockParams) -> Result<Self, ModelError> {
        let m = p
            .bottleneck_width
            .ok_or_else(|| ModelError::missing(super::KEY_EXPANSION, NEEDED_BY))?;
        let (init, bn) = (p.conv_init, p.bn);
        let pointwise = ConvSpec::centred([1, 1, 1], [1, 1, 1]);
        // Created in the reference's state_dict order: a, a_bn, b, b_rf, b_bn, b_avgpool_bn, c, c_bn.
        let a = ConvBn::new(path, "a", (p.dim_in, m), pointwise, init, bn);
        let [_, kh, kw] = p.kernel;
        // The reference forces the temporal kernel and stride of `b` to 1 whatever KERNEL_SIZE
        // and DOWNSAMPLING_TEMPORAL say.
        let b_cfg = TAdaConv2dConfig {
            kernel_size: [kh, kw],
            stride: [p.stride[1], p.stride[2]],
            padding: [kh / 2, kw / 2],
            bias: false,
            cal_dim: CalDim::Cin,
            ..TAdaConv2dConfig::new(m, m, kh)
        };
        let b = TAdaConv2d::new(&(path / "b"), &b_cfg).map_err(op_error)?;
        // The reference passes no BN settings to RouteFuncMLP: its BN keeps eps 1e-5 and
        // momentum 0.1 whatever BN.EPS / BN.MOMENTUM are.
        let rf_cfg = RouteFuncMLPConfig {
            ratio: spec.route_func_r,
            kernels: spec.route_func_k,
            ..RouteFuncMLPConfig::new(m)
        };
        let rf_path = path / "b_rf";
        let b_rf = RouteFuncMLP::new(&rf_path, &rf_cfg).map_err(op_error)?;
        if init == ConvInit::KaimingFanOut {
            // The ResNet initialiser covers every Conv3d of the backbone except `skip_init` ones
            // (b_rf.b); its BN already starts at weight 1 / bias 0.
            for (name, conv) in [("g", &b_rf.g), ("a", &b_rf.a), ("b", &b_rf.b)] {
                let weight = (&rf_path / name).path("weight");
                if !b_rf.skip_init().contains(&weight) {
                    msra_fill(conv);
                }
            }
        }
        let b_bn = Bn::new(path / "b_bn", m, bn);
        let b_avgpool_bn = Bn::zeroed(path / "b_avgpool_bn", m, bn);
        let c = ConvBn::new(path, "c", (m, p.num_filters), pointwise, init, bn);

        let mut skip_init = b_rf.skip_init().to_vec();
        let avg_bn = path / "b_avgpool_bn";
        skip_init.extend([avg_bn.path("weight"), avg_bn.path("bias")]);
        Ok(Self {
            a,
            b,
            b_bn,
            b_avgpool_bn,
            c,
            pool_k: spec.pool_k,
            freeze_bn: bn.freeze,
            rf_tap: module_path(&rf_path),
            b_tap: module_path(&(path / "b")),
            b_rf,
            skip_init,
        })
    }

    /// Full VarStore names of the parameters that model-wide initialisers must leave alone:
    /// `b_rf.b.weight`, `b_avgpool_bn.weight`, `b_avgpool_bn.bias`.
    pub fn skip_init(&self) -> &[String] {
        &self.skip_init
    }

    /// Records the calibration (`…conv_branch.b_rf`) and the TAdaConv output (`…conv_branch.b`).
    ///
    /// # Shapes
    /// (N, dim_in, T, H, W) -> (N, num_filters, T, H/s, W/s); alpha is (N, m, T, 1, 1).
    pub fn forward_taps(&self, xs: &Tensor, train: bool, taps: &mut Taps) -> Tensor {
        let y = self.a.forward_t(xs, train).relu();
        let alpha = self.b_rf.forward_t(&y, train && !self.freeze_bn);
        taps.record(&self.rf_tap, &alpha);
        let z = self.b.forward_t(&y, &alpha, train);
        taps.record(&self.b_tap, &z);
        // Zero-padded mean (count_include_pad), stride 1: the shape of z is kept.
        let pooled = z.avg_pool3d(
            self.pool_k,
            [1, 1, 1],
            self.pool_k.map(|k| k / 2),
            false,
            true,
            None,
        );
        let z =
            (self.b_bn.forward_t(&z, train) + self.b_avgpool_bn.forward_t(&pooled, train)).relu();
        self.c.forward_t(&z, train)
    }
}
