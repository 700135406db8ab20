//! `TAdaConv2d`: the V1 temporally adaptive 2-D convolution, and the calibrated grouped conv that
//! V1 and V2 share.

use tch::nn;
use tch::Tensor;

use super::{check_clip, ensure, CalDim, OpError};

const OP: &str = "TAdaConv2d";

/// Parameters of a [`TAdaConv2d`]. The reference takes (t, h, w) triples whose temporal entries
/// must be kernel 1, stride 1, padding 0, dilation 1; only the spatial pairs are kept here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TAdaConv2dConfig {
    pub in_channels: i64,
    pub out_channels: i64,
    /// (k_h, k_w).
    pub kernel_size: [i64; 2],
    pub stride: [i64; 2],
    pub padding: [i64; 2],
    pub dilation: [i64; 2],
    pub groups: i64,
    /// Adds `bias` (1, 1, C_out); V1 never calibrates it.
    pub bias: bool,
    pub cal_dim: CalDim,
}

impl TAdaConv2dConfig {
    /// A k×k conv with the reference's defaults: stride 1, padding 0, dilation 1, groups 1,
    /// bias on, `cal_dim` cin.
    pub fn new(in_channels: i64, out_channels: i64, kernel_size: i64) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: [kernel_size, kernel_size],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
            cal_dim: CalDim::Cin,
        }
    }

    /// Channels of the calibration factors: C_in / groups for cin, C_out for cout.
    pub fn alpha_channels(&self) -> i64 {
        match self.cal_dim {
            CalDim::Cin => self.in_channels / self.groups.max(1),
            CalDim::Cout => self.out_channels,
        }
    }

    /// The geometry shared with V2, validated.
    pub(crate) fn conv(&self, op: &'static str) -> Result<CalibratedConv, OpError> {
        CalibratedConv {
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            kernel_size: self.kernel_size,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
            cal_dim: self.cal_dim,
        }
        .validated(op)
    }
}

/// Geometry of a per-(b, t) calibrated conv; validated once, at construction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CalibratedConv {
    pub in_channels: i64,
    pub out_channels: i64,
    pub kernel_size: [i64; 2],
    pub stride: [i64; 2],
    pub padding: [i64; 2],
    pub dilation: [i64; 2],
    pub groups: i64,
    pub cal_dim: CalDim,
}

impl CalibratedConv {
    /// `self`, or why this geometry cannot work.
    pub fn validated(self, op: &'static str) -> Result<Self, OpError> {
        let (ci, co, g) = (self.in_channels, self.out_channels, self.groups);
        ensure(ci > 0 && co > 0 && g > 0, op, || {
            format!("channels ({ci} -> {co}) and groups ({g}) must be positive")
        })?;
        ensure(ci % g == 0 && co % g == 0, op, || {
            format!("groups {g} must divide in_channels {ci} and out_channels {co}")
        })?;
        let positive = |v: [i64; 2]| v.iter().all(|x| *x > 0);
        ensure(
            positive(self.kernel_size) && positive(self.stride) && positive(self.dilation),
            op,
            || "kernel_size, stride and dilation must be positive".to_string(),
        )?;
        ensure(self.padding.iter().all(|p| *p >= 0), op, || {
            "padding must not be negative".to_string()
        })?;
        Ok(self)
    }

    /// Output size of one spatial axis (0 = H, 1 = W); ≤ 0 when the input is too small.
    pub fn out_len(&self, len: i64, axis: usize) -> i64 {
        let span = self.dilation[axis] * (self.kernel_size[axis] - 1) + 1;
        (len + 2 * self.padding[axis] - span).div_euclid(self.stride[axis]) + 1
    }

    /// Checks x (B, C_in, T, H, W) and the weight calibration (B, C_a, T, 1, 1).
    pub fn check(&self, op: &'static str, xs: &Tensor, alpha: &Tensor) -> Result<(), OpError> {
        let shape = |message: String| OpError::Shape { op, message };
        check_clip(op, xs, self.in_channels)?;
        let x = xs.size();
        if self.out_len(x[3], 0) < 1 || self.out_len(x[4], 1) < 1 {
            return Err(shape(format!(
                "input {}x{} is smaller than the dilated kernel",
                x[3], x[4]
            )));
        }
        let c_a = match self.cal_dim {
            CalDim::Cin => self.in_channels / self.groups,
            CalDim::Cout => self.out_channels,
        };
        let want = [x[0], c_a, x[2], 1, 1];
        if alpha.size() != want {
            return Err(shape(format!(
                "calibration for cal_dim {} must be {want:?}, got {:?}",
                self.cal_dim,
                alpha.size()
            )));
        }
        Ok(())
    }

    /// One grouped conv2d over all frames: frame (b, t) is convolved with its own calibrated
    /// kernel, as the reference does it (groups = groups · B · T, rows ordered (b, t, o)).
    /// `bias_bt` is the per-(b, t) bias, already flattened to (B·T·C_out). Inputs must have passed
    /// [`check`](Self::check).
    ///
    /// # Shapes
    /// - xs: (B, C_in, T, H, W); alpha: (B, C_a, T, 1, 1)
    /// - weight: (1, 1, C_out, C_in / groups, k_h, k_w)
    /// - output: (B, T, C_out, H', W') — T still next to B, callers permute
    pub fn forward(
        &self,
        xs: &Tensor,
        alpha: &Tensor,
        weight: &Tensor,
        bias_bt: Option<&Tensor>,
    ) -> Tensor {
        let size = xs.size();
        let (b, c_in, t, h, w) = (size[0], size[1], size[2], size[3], size[4]);
        let [kh, kw] = self.kernel_size;
        // (B, C_in, T, H, W) -> (B, T, C_in, H, W) -> (1, B·T·C_in, H, W): each frame's channels
        // become one group block of the batched conv.
        let x = xs.permute([0, 2, 1, 3, 4]).reshape([1, b * t * c_in, h, w]);
        // (B, C_a, T, 1, 1) -> (B, T, C_a, 1, 1)
        let a = alpha.permute([0, 2, 1, 3, 4]);
        // cin: (B, T, 1, C_a, 1, 1) scales the input-channel axis of the kernel;
        // cout: (B, T, C_a, 1, 1, 1) scales the output-channel axis.
        let a = match self.cal_dim {
            CalDim::Cin => a.unsqueeze(2),
            CalDim::Cout => a.unsqueeze(3),
        };
        // (B, T, C_out, C_in/g, k_h, k_w) -> (B·T·C_out, C_in/g, k_h, k_w)
        let kernels = (a * weight).reshape([-1, c_in / self.groups, kh, kw]);
        let y = x.conv2d(
            &kernels,
            bias_bt,
            self.stride,
            self.padding,
            self.dilation,
            self.groups * b * t,
        );
        let (ho, wo) = (self.out_len(h, 0), self.out_len(w, 1));
        // (1, B·T·C_out, H', W') -> (B, T, C_out, H', W')
        y.view([b, t, self.out_channels, ho, wo])
    }
}

/// The V1 temporally adaptive 2-D convolution (reference `TAdaConv2d`).
///
/// Every frame t of every clip b is convolved with its own kernel
/// W_bt = alpha[b, :, t] ⊙ W, the shared kernel scaled along its input channels (`cal_dim` cin)
/// or output channels (cout); `bias` is added uncalibrated. alpha normally comes from a
/// [`RouteFuncMLP`](super::RouteFuncMLP) run on the same input.
///
/// Init as the reference: `weight` ~ U(±1/√F) with F = C_out · C_in/groups · k_h · k_w (PyTorch's
/// Kaiming-uniform(a = √5) on the 6-D tensor, so C_out counts in the fan-in), `bias` likewise.
/// The reference's model initialisers never touch these two raw parameters.
///
/// Variables (relative to the path): `weight` (1, 1, C_out, C_in/groups, k_h, k_w) and, with bias,
/// `bias` (1, 1, C_out).
///
/// # Shapes
/// - x: (B, C_in, T, H, W)
/// - alpha: (B, C_in/groups, T, 1, 1) for cin, (B, C_out, T, 1, 1) for cout
/// - output: (B, C_out, T, H', W'), H' = ⌊(H + 2p_h − d_h(k_h − 1) − 1) / s_h⌋ + 1, W' alike
#[derive(Debug)]
pub struct TAdaConv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    conv: CalibratedConv,
}

impl TAdaConv2d {
    /// Creates `weight` (and `bias`) under `path`.
    pub fn new(path: &nn::Path, cfg: &TAdaConv2dConfig) -> Result<Self, OpError> {
        let conv = cfg.conv(OP)?;
        let [kh, kw] = cfg.kernel_size;
        let ci_g = cfg.in_channels / cfg.groups;
        let bound = 1.0 / ((cfg.out_channels * ci_g * kh * kw) as f64).sqrt();
        let init = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let weight = path.var("weight", &[1, 1, cfg.out_channels, ci_g, kh, kw], init);
        let bias = cfg
            .bias
            .then(|| path.var("bias", &[1, 1, cfg.out_channels], init));
        Ok(Self { weight, bias, conv })
    }

    /// Checks x and alpha against the configuration (see `# Shapes`).
    pub fn check_input(&self, xs: &Tensor, alpha: &Tensor) -> Result<(), OpError> {
        self.conv.check(OP, xs, alpha)
    }

    /// The calibrated convolution, or an error when x or alpha has the wrong shape. `train` has
    /// no effect (the op has no train-time behaviour); it keeps the call shape of the other ops.
    pub fn f_forward_t(
        &self,
        xs: &Tensor,
        alpha: &Tensor,
        _train: bool,
    ) -> Result<Tensor, OpError> {
        self.check_input(xs, alpha)?;
        let size = xs.size();
        let (b, t) = (size[0], size[2]);
        // (1, 1, C_out) -> (B, T, C_out) -> (B·T·C_out): the same bias for every frame.
        let bias = self
            .bias
            .as_ref()
            .map(|bias| bias.repeat([b, t, 1]).reshape([-1]));
        let y = self.conv.forward(xs, alpha, &self.weight, bias.as_ref());
        // (B, T, C_out, H', W') -> (B, C_out, T, H', W')
        Ok(y.permute([0, 2, 1, 3, 4]))
    }

    /// As [`f_forward_t`](Self::f_forward_t).
    ///
    /// # Panics
    /// When x or alpha has the wrong shape.
    pub fn forward_t(&self, xs: &Tensor, alpha: &Tensor, train: bool) -> Tensor {
        self.f_forward_t(xs, alpha, train)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Converts a pretrained 2-D conv weight into TAdaConv's factorised layout, as used to start a
/// TAda model from 2-D (e.g. ImageNet) weights.
///
/// # Shapes
/// (C_out, C_in, k_h, k_w), or an inflated Conv3d weight (C_out, C_in, 1, k_h, k_w), ->
/// (1, 1, C_out, C_in, k_h, k_w)
pub fn conv2d_weight_to_tada(weight: &Tensor) -> Result<Tensor, OpError> {
    let size = weight.size();
    let spatial = match size.as_slice() {
        [co, ci, kh, kw] => [*co, *ci, *kh, *kw],
        [co, ci, 1, kh, kw] => [*co, *ci, *kh, *kw],
        _ => {
            return Err(OpError::Shape {
                op: "conv2d_weight_to_tada",
                message: format!(
                    "expected a conv2d weight (C_out, C_in, k_h, k_w) or a conv3d weight with \
                     temporal kernel 1, got {size:?}"
                ),
            })
        }
    };
    let [co, ci, kh, kw] = spatial;
    // (C_out, C_in, [1,] k_h, k_w) -> (1, 1, C_out, C_in, k_h, k_w)
    Ok(weight.reshape([1, 1, co, ci, kh, kw]))
}

#[cfg(test)]
#[path = "tadaconv2d_tests.rs"]
mod tests;
