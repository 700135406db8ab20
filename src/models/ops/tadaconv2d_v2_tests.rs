use super::*;
use crate::models::ops::test_util::{assert_grads_reach_all, max_abs_diff, per_frame_conv, randn};
use tch::{Device, Kind};

fn build(cfg: &TAdaConv2dV2Config) -> (nn::VarStore, TAdaConv2dV2) {
    let vs = nn::VarStore::new(Device::Cpu);
    let op = TAdaConv2dV2::new(&(vs.root() / "tadaconv"), cfg).expect("valid config");
    (vs, op)
}

/// TAdaFormer-style: depthwise, cal_dim cout, bias with bias calibration, internal rf and aggr.
fn depthwise(c: i64) -> TAdaConv2dV2Config {
    TAdaConv2dV2Config {
        groups: c,
        cal_dim: CalDim::Cout,
        rf_r: 2,
        head_dim: 8,
        ..TAdaConv2dV2Config::new(c, c, 3)
    }
}

fn ones(shape: &[i64]) -> Tensor {
    Tensor::ones(shape, (Kind::Float, Device::Cpu))
}

#[test]
fn variables_and_skip_init() {
    let (vs, op) = build(&depthwise(32));
    let vars = vs.variables();
    assert_eq!(vars["tadaconv.weight"].size(), [1, 1, 32, 1, 3, 3]);
    assert_eq!(vars["tadaconv.bias"].size(), [1, 1, 32]);
    assert_eq!(
        vars["tadaconv.rf_func.b_bias.weight"].size(),
        [32, 16, 3, 1, 1]
    );
    assert_eq!(vars["tadaconv.bn_b.running_mean"].size(), [32]);
    // 2 + 12 in rf_func + 2 × 4 in the BNs (num_batches_tracked is not a tch variable).
    assert_eq!(vars.len(), 22);
    assert_eq!(
        op.skip_init(),
        ["tadaconv.bn_b.weight", "tadaconv.bn_b.bias"]
    );
    assert_eq!(
        vars["tadaconv.bn_b.weight"]
            .abs()
            .sum(Kind::Double)
            .double_value(&[]),
        0.0
    );
    assert_eq!(
        vars["tadaconv.bn_a.weight"]
            .mean(Kind::Double)
            .double_value(&[]),
        1.0
    );
    // trunc-normal(0.02): neither zero nor large.
    let rf_b = vars["tadaconv.rf_func.b.weight"]
        .abs()
        .max()
        .double_value(&[]);
    assert!(rf_b > 0.0 && rf_b < 0.2, "{rf_b}");

    let bare = TAdaConv2dV2Config {
        internal_rf_func: false,
        internal_temp_aggr: false,
        bias: false,
        ..depthwise(8)
    };
    let (vs, op) = build(&bare);
    assert_eq!(vs.variables().len(), 1);
    assert!(op.skip_init().is_empty());
}

#[test]
fn output_shapes() {
    let cases = [
        depthwise(32),
        TAdaConv2dV2Config {
            rf_r: 1,
            head_dim: 8,
            bias: false,
            ..TAdaConv2dV2Config::new(16, 16, 3)
        },
        TAdaConv2dV2Config {
            dilation: [2, 2],
            padding: [2, 2],
            ..depthwise(16)
        },
        TAdaConv2dV2Config {
            padding: [3, 3],
            ..TAdaConv2dV2Config {
                kernel_size: [7, 7],
                ..depthwise(16)
            }
        },
    ];
    for cfg in cases {
        let (_vs, op) = build(&cfg);
        let y = nn::ModuleT::forward_t(&op, &randn(&[2, cfg.in_channels, 4, 5, 7]), false);
        assert_eq!(y.size(), [2, cfg.out_channels, 4, 5, 7], "{cfg:?}");
    }
    // External calibration, groups with cin, no internal modules.
    let ext = TAdaConv2dV2Config {
        groups: 2,
        internal_rf_func: false,
        internal_temp_aggr: false,
        ..TAdaConv2dV2Config::new(8, 12, 3)
    };
    let (_vs, op) = build(&ext);
    let cal = Calibration {
        weight: randn(&[2, 4, 3, 1, 1]),
        bias: Some(randn(&[2, 12, 3, 1, 1])),
    };
    let y = op.forward_t(&randn(&[2, 8, 3, 6, 5]), Some(&cal), false);
    assert_eq!(y.size(), [2, 12, 3, 6, 5]);
}

#[test]
fn unit_calibration_without_aggregation_is_a_per_frame_conv() {
    let cfg = TAdaConv2dV2Config {
        internal_rf_func: false,
        internal_temp_aggr: false,
        ..depthwise(8)
    };
    let (_vs, op) = build(&cfg);
    tch::no_grad(|| {
        let _ = op
            .bias
            .as_ref()
            .expect("bias")
            .shallow_clone()
            .normal_(0.0, 1.0);
    });
    let x = randn(&[2, 8, 3, 6, 5]);
    let cal = Calibration {
        weight: ones(&[2, 8, 3, 1, 1]),
        bias: Some(ones(&[2, 8, 3, 1, 1])),
    };
    let ours = op.forward_t(&x, Some(&cal), false);
    let reference = per_frame_conv(&x, &op.weight, op.bias.as_ref(), &[[1, 1], [1, 1], [1, 1]]);
    assert!(max_abs_diff(&ours, &reference) < 1e-5);

    // Calibrated: conv(x) ⊙ w_alpha + bias ⊙ b_alpha (cal_dim cout).
    let cal = Calibration {
        weight: randn(&[2, 8, 3, 1, 1]),
        bias: Some(randn(&[2, 8, 3, 1, 1])),
    };
    // (1, 1, C_out) -> (1, C_out, 1, 1, 1)
    let bias = op.bias.as_ref().expect("bias").view([1, 8, 1, 1, 1]);
    let b_alpha = cal.bias.as_ref().expect("bias calibration");
    let reference = per_frame_conv(&x, &op.weight, None, &[[1, 1], [1, 1], [1, 1]]) * &cal.weight
        + bias * b_alpha;
    assert!(max_abs_diff(&op.forward_t(&x, Some(&cal), false), &reference) < 1e-5);
}

#[test]
fn token_layout_matches_the_clip_layout() {
    let cfg = TAdaConv2dV2Config {
        num_frames: Some(3),
        ..depthwise(16)
    };
    let (_vs, op) = build(&cfg);
    let (b, t, h) = (2, 3, 4);
    let clip = randn(&[b, 16, t, h, h]);
    let y = nn::ModuleT::forward_t(&op, &clip, false);
    // (B, C, T, h, w) -> (h, w, B, T, C) -> (h·w, B·T, C)
    let to_tokens = |x: &Tensor| x.permute([3, 4, 0, 2, 1]).reshape([h * h, b * t, -1]);
    let y_tokens = op.forward_tokens_t(&to_tokens(&clip), None, false);
    assert_eq!(y_tokens.size(), [h * h, b * t, 16]);
    assert!(max_abs_diff(&y_tokens, &to_tokens(&y)) < 1e-6);

    assert!(op
        .f_forward_tokens_t(&randn(&[15, 6, 16]), None, false)
        .is_err());
    assert!(op
        .f_forward_tokens_t(&randn(&[16, 5, 16]), None, false)
        .is_err());
    let (_vs, no_t) = build(&depthwise(16));
    assert!(no_t
        .f_forward_tokens_t(&randn(&[16, 6, 16]), None, false)
        .is_err());
}

#[test]
fn train_mode_gradients_reach_every_parameter() {
    tch::manual_seed(4);
    let (vs, op) = build(&depthwise(16));
    let x = randn(&[2, 16, 4, 5, 5]);
    let target = randn(&[2, 16, 4, 5, 5]);
    let first = [
        "tadaconv.weight",
        "tadaconv.bias",
        "tadaconv.bn_b.weight",
        "tadaconv.bn_b.bias",
    ];
    assert_grads_reach_all(&vs, &first, || {
        (nn::ModuleT::forward_t(&op, &x, true) - &target)
            .square()
            .mean(None)
    });
}

#[test]
fn rejects_bad_config_and_input() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let not_same = TAdaConv2dV2Config {
        padding: [0, 0],
        ..depthwise(8)
    };
    assert!(TAdaConv2dV2::new(&root, &not_same).is_err());
    let in_ne_out = TAdaConv2dV2Config {
        head_dim: 8,
        ..TAdaConv2dV2Config::new(8, 16, 3)
    };
    assert!(TAdaConv2dV2::new(&root, &in_ne_out).is_err());
    let cin_groups = TAdaConv2dV2Config {
        cal_dim: CalDim::Cin,
        ..depthwise(16)
    };
    assert!(TAdaConv2dV2::new(&root, &cin_groups).is_err());

    let (_vs, op) = build(&depthwise(16));
    assert!(op
        .f_forward_t(&randn(&[2, 8, 4, 5, 5]), None, false)
        .is_err());
    let bad_bias = Calibration {
        weight: ones(&[2, 16, 4, 1, 1]),
        bias: Some(ones(&[2, 16, 3, 1, 1])),
    };
    assert!(op
        .f_forward_t(&randn(&[2, 16, 4, 5, 5]), Some(&bad_bias), false)
        .is_err());
    let (_vs, ext) = build(&TAdaConv2dV2Config {
        internal_rf_func: false,
        ..depthwise(16)
    });
    assert!(ext
        .f_forward_t(&randn(&[2, 16, 4, 5, 5]), None, false)
        .is_err());
}
