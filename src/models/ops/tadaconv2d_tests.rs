use super::*;
use crate::models::ops::test_util::{assert_grads_reach_all, max_abs_diff, per_frame_conv, randn};
use crate::models::ops::{RouteFuncMLP, RouteFuncMLPConfig};
use tch::Device;

fn geometry(cfg: &TAdaConv2dConfig) -> [[i64; 2]; 3] {
    [cfg.stride, cfg.padding, cfg.dilation]
}

fn build(cfg: &TAdaConv2dConfig) -> (nn::VarStore, TAdaConv2d) {
    let vs = nn::VarStore::new(Device::Cpu);
    let op = TAdaConv2d::new(&(vs.root() / "b"), cfg).expect("valid config");
    (vs, op)
}

fn alpha_for(cfg: &TAdaConv2dConfig, b: i64, t: i64) -> Tensor {
    randn(&[b, cfg.alpha_channels(), t, 1, 1])
}

#[test]
fn output_shapes_stride_groups_dilation() {
    let cases = [
        // (config, input H, W, expected H', W')
        (
            TAdaConv2dConfig {
                stride: [2, 2],
                padding: [1, 1],
                ..TAdaConv2dConfig::new(8, 12, 3)
            },
            9,
            13,
            5,
            7,
        ),
        (
            TAdaConv2dConfig {
                groups: 4,
                padding: [1, 1],
                ..TAdaConv2dConfig::new(8, 12, 3)
            },
            10,
            14,
            10,
            14,
        ),
        (
            TAdaConv2dConfig {
                groups: 8,
                padding: [3, 3],
                cal_dim: CalDim::Cout,
                ..TAdaConv2dConfig::new(8, 8, 7)
            },
            10,
            14,
            10,
            14,
        ),
        (
            TAdaConv2dConfig {
                dilation: [2, 2],
                padding: [2, 2],
                ..TAdaConv2dConfig::new(8, 6, 3)
            },
            10,
            14,
            10,
            14,
        ),
        (
            TAdaConv2dConfig {
                dilation: [2, 1],
                stride: [1, 2],
                ..TAdaConv2dConfig::new(4, 6, 3)
            },
            10,
            14,
            6,
            6,
        ),
    ];
    for (cfg, h, w, ho, wo) in cases {
        let (_vs, op) = build(&cfg);
        let y = op.forward_t(
            &randn(&[2, cfg.in_channels, 3, h, w]),
            &alpha_for(&cfg, 2, 3),
            false,
        );
        assert_eq!(y.size(), [2, cfg.out_channels, 3, ho, wo], "{cfg:?}");
    }
}

#[test]
fn variables_and_init_bounds() {
    let cfg = TAdaConv2dConfig {
        groups: 2,
        ..TAdaConv2dConfig::new(8, 12, 3)
    };
    let (vs, op) = build(&cfg);
    let vars = vs.variables();
    assert_eq!(vars["b.weight"].size(), [1, 1, 12, 4, 3, 3]);
    assert_eq!(vars["b.bias"].size(), [1, 1, 12]);
    assert_eq!(vars.len(), 2);
    // Kaiming-uniform(a = √5) on the 6-D tensor: bound 1/√(C_out · C_in/g · k_h · k_w).
    let bound = 1.0 / ((12 * 4 * 9) as f64).sqrt();
    assert!(op.weight.abs().max().double_value(&[]) <= bound);
    assert!(op.weight.abs().max().double_value(&[]) > 0.5 * bound);
    let (vs, _) = build(&TAdaConv2dConfig { bias: false, ..cfg });
    assert_eq!(vs.variables().len(), 1);
}

#[test]
fn identity_with_zero_routing_conv_equals_per_frame_conv2d() {
    let cases = [
        TAdaConv2dConfig {
            stride: [2, 2],
            padding: [1, 1],
            ..TAdaConv2dConfig::new(8, 12, 3)
        },
        TAdaConv2dConfig {
            groups: 2,
            padding: [1, 1],
            dilation: [1, 1],
            cal_dim: CalDim::Cout,
            ..TAdaConv2dConfig::new(8, 8, 3)
        },
        TAdaConv2dConfig {
            bias: false,
            dilation: [2, 2],
            padding: [2, 2],
            ..TAdaConv2dConfig::new(8, 4, 3)
        },
    ];
    for cfg in cases {
        let vs = nn::VarStore::new(Device::Cpu);
        let rf = RouteFuncMLP::new(
            &(vs.root() / "b_rf"),
            &RouteFuncMLPConfig::new(cfg.in_channels),
        )
        .expect("rf");
        let op = TAdaConv2d::new(&(vs.root() / "b"), &cfg).expect("op");
        let x = randn(&[2, cfg.in_channels, 4, 9, 11]);
        let alpha = nn::ModuleT::forward_t(&rf, &x, false);
        let ours = op.forward_t(&x, &alpha, false);
        let reference = per_frame_conv(&x, &op.weight, op.bias.as_ref(), &geometry(&cfg));
        assert_eq!(ours.size(), reference.size());
        let diff = max_abs_diff(&ours, &reference);
        assert!(diff < 1e-5, "{cfg:?}: max abs diff {diff}");
    }
}

#[test]
fn calibration_matches_scaled_input_or_output() {
    // cin: conv(x ⊙ alpha); cout: conv(x) ⊙ alpha + bias, both per frame.
    let cin = TAdaConv2dConfig {
        padding: [1, 1],
        ..TAdaConv2dConfig::new(6, 5, 3)
    };
    let (_vs, op) = build(&cin);
    let x = randn(&[2, 6, 3, 7, 8]);
    let alpha = alpha_for(&cin, 2, 3);
    let reference = per_frame_conv(
        &(&x * &alpha),
        &op.weight,
        op.bias.as_ref(),
        &geometry(&cin),
    );
    assert!(max_abs_diff(&op.forward_t(&x, &alpha, false), &reference) < 1e-5);

    let cout = TAdaConv2dConfig {
        cal_dim: CalDim::Cout,
        ..cin
    };
    let (_vs, op) = build(&cout);
    let alpha = alpha_for(&cout, 2, 3);
    // (1, 1, C_out) -> (1, C_out, 1, 1, 1)
    let bias = op.bias.as_ref().expect("bias").view([1, 5, 1, 1, 1]);
    let reference = per_frame_conv(&x, &op.weight, None, &geometry(&cout)) * &alpha + bias;
    assert!(max_abs_diff(&op.forward_t(&x, &alpha, false), &reference) < 1e-5);
}

#[test]
fn train_mode_gradients_reach_every_parameter() {
    tch::manual_seed(2);
    let vs = nn::VarStore::new(Device::Cpu);
    let rf = RouteFuncMLP::new(&(vs.root() / "b_rf"), &RouteFuncMLPConfig::new(8)).expect("rf");
    let cfg = TAdaConv2dConfig {
        stride: [2, 2],
        padding: [1, 1],
        ..TAdaConv2dConfig::new(8, 12, 3)
    };
    let op = TAdaConv2d::new(&(vs.root() / "b"), &cfg).expect("op");
    let x = randn(&[2, 8, 4, 9, 9]);
    let target = randn(&[2, 12, 4, 5, 5]);
    let loss = || {
        let alpha = nn::ModuleT::forward_t(&rf, &x, true);
        (op.forward_t(&x, &alpha, true) - &target)
            .square()
            .mean(None)
    };
    assert_grads_reach_all(&vs, &["b_rf.b.weight", "b.weight", "b.bias"], loss);
}

#[test]
fn converted_2d_weight_reproduces_conv2d() {
    let w2 = randn(&[12, 8, 3, 3]);
    let w6 = conv2d_weight_to_tada(&w2).expect("4-D weight");
    assert_eq!(w6.size(), [1, 1, 12, 8, 3, 3]);
    let inflated = conv2d_weight_to_tada(&w2.unsqueeze(2)).expect("5-D weight");
    assert_eq!(max_abs_diff(&inflated, &w6), 0.0);
    assert!(conv2d_weight_to_tada(&randn(&[12, 8, 3, 3, 3])).is_err());
    assert!(conv2d_weight_to_tada(&randn(&[12, 8])).is_err());

    let cfg = TAdaConv2dConfig {
        bias: false,
        padding: [1, 1],
        ..TAdaConv2dConfig::new(8, 12, 3)
    };
    let (_vs, op) = build(&cfg);
    tch::no_grad(|| op.weight.shallow_clone().copy_(&w6));
    let x = randn(&[1, 8, 2, 6, 6]);
    let ours = op.forward_t(
        &x,
        &Tensor::ones([1, 8, 2, 1, 1], (tch::Kind::Float, Device::Cpu)),
        false,
    );
    // (1, 8, 2, 6, 6) -> frame 1 as (1, 8, 6, 6)
    let frame = x.select(2, 1);
    let reference = frame.conv2d(&w2, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
    assert!(max_abs_diff(&ours.select(2, 1), &reference) < 1e-5);
}

#[test]
fn rejects_bad_config_and_shapes() {
    let vs = nn::VarStore::new(Device::Cpu);
    let bad_groups = TAdaConv2dConfig {
        groups: 3,
        ..TAdaConv2dConfig::new(8, 12, 3)
    };
    assert!(TAdaConv2d::new(&vs.root(), &bad_groups).is_err());
    let bad_stride = TAdaConv2dConfig {
        stride: [0, 1],
        ..TAdaConv2dConfig::new(8, 12, 3)
    };
    assert!(TAdaConv2d::new(&vs.root(), &bad_stride).is_err());

    let cfg = TAdaConv2dConfig::new(8, 12, 3);
    let (_vs, op) = build(&cfg);
    let x = randn(&[2, 8, 3, 5, 5]);
    assert!(op.f_forward_t(&x, &randn(&[2, 8, 3, 1, 1]), false).is_ok());
    // cin needs C_in/groups channels, not C_out.
    assert!(op
        .f_forward_t(&x, &randn(&[2, 12, 3, 1, 1]), false)
        .is_err());
    assert!(op.f_forward_t(&x, &randn(&[2, 8, 2, 1, 1]), false).is_err());
    assert!(op
        .f_forward_t(&randn(&[2, 7, 3, 5, 5]), &randn(&[2, 8, 3, 1, 1]), false)
        .is_err());
    // Smaller than the kernel without padding.
    assert!(op
        .f_forward_t(&randn(&[2, 8, 3, 2, 5]), &randn(&[2, 8, 3, 1, 1]), false)
        .is_err());
}
