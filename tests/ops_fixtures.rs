//! Parity of the TAdaConv operators with the reference's golden tensors
//! (`tests/fixtures/tadaconv2d_op_*` and `tadaconv2dv2_op_*`, see docs/fixtures.md).
//!
//! Each case builds the op with the configuration of scripts/fixtures/cases.py, wired like the
//! reference (V1: `b_rf` + `b` as in TAda2DBlock; V2: `tadaconv`), loads the fixture strictly (a
//! missing or unexpected key fails), runs it in eval mode and compares `__output__` and every
//! stored `__out_*__` intermediate with the per-tensor tolerance of the fixture's json:
//! |ours − ref| ≤ atol + rtol·|ref|. Run with `--nocapture` to see the max abs diffs.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use tada::checkpoint::{load_into, read_safetensors, NamedTensors};
use tada::models::ops::{
    CalDim, Calibration, RouteFuncMLP, RouteFuncMLPConfig, TAdaConv2d, TAdaConv2dConfig,
    TAdaConv2dV2, TAdaConv2dV2Config,
};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::common::fixtures_dir;

struct Fixture {
    case: String,
    path: PathBuf,
    tensors: NamedTensors,
    json: Value,
}

impl Fixture {
    fn open(case: &str) -> Self {
        let dir = fixtures_dir();
        let path = dir.join(format!("{case}.safetensors"));
        let tensors = read_safetensors(&path).unwrap_or_else(|e| panic!("{case}: {e}"));
        let json_path = dir.join(format!("{case}.json"));
        let text = std::fs::read_to_string(&json_path)
            .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{case}.json: {e}"));
        Self {
            case: case.to_string(),
            path,
            tensors,
            json,
        }
    }

    fn tensor(&self, name: &str) -> &Tensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("{}: no tensor {name}", self.case))
    }

    /// The op's parameters in the json, e.g. `op.TAdaConv2d`.
    fn op(&self, class: &str) -> &Value {
        &self.json["op"][class]
    }

    /// Strict load: every weight of the file must fit a variable and vice versa.
    fn load(&self, vs: &nn::VarStore) {
        let report = load_into(vs, &self.tensors, &self.path, true)
            .unwrap_or_else(|e| panic!("{}: {e}", self.case));
        assert!(report.is_complete(), "{}: {report}", self.case);
    }

    /// `__output__` and every `__out_*__` the file stores.
    fn stored_outputs(&self) -> BTreeSet<String> {
        self.tensors
            .tensors
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n == "__output__" || n.starts_with("__out_"))
            .collect()
    }

    /// Max abs diff of `ours` against the stored tensor, or why it is out of tolerance.
    fn compare(&self, name: &str, ours: &Tensor) -> Result<f64, String> {
        let reference = self.tensor(name);
        if ours.size() != reference.size() {
            return Err(format!(
                "{name}: shape {:?}, reference {:?}",
                ours.size(),
                reference.size()
            ));
        }
        let tol = &self.json["tolerance"][name];
        let (Some(atol), Some(rtol)) = (tol["atol"].as_f64(), tol["rtol"].as_f64()) else {
            return Err(format!("{name}: no tolerance in {}.json", self.case));
        };
        let ours = ours.to_kind(Kind::Double);
        let reference = reference.to_kind(Kind::Double);
        let diff = (&ours - &reference).abs();
        let max_diff = diff.max().double_value(&[]);
        let excess = (diff - (reference.abs() * rtol + atol))
            .max()
            .double_value(&[]);
        println!(
            "{}: {name}: max abs diff {max_diff:.3e} (atol {atol:e}, rtol {rtol:e})",
            self.case
        );
        if excess > 0.0 || !max_diff.is_finite() {
            return Err(format!(
                "{name}: max abs diff {max_diff:e} exceeds atol {atol:e} + rtol {rtol:e}·|ref|"
            ));
        }
        Ok(max_diff)
    }

    /// Compares every result and checks that every stored output was compared.
    fn check_all(&self, results: &[(String, Tensor)]) {
        let compared: BTreeSet<String> = results.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(
            compared,
            self.stored_outputs(),
            "{}: compared set",
            self.case
        );
        let failures: Vec<String> = results
            .iter()
            .filter_map(|(name, ours)| self.compare(name, ours).err())
            .collect();
        assert!(
            failures.is_empty(),
            "{}: {}",
            self.case,
            failures.join("; ")
        );
    }
}

fn cal_dim(v: &Value) -> CalDim {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad cal_dim {v}"))
}

/// V1 wiring as in TAda2DBlock: `y = b(x, b_rf(x))`.
fn run_v1(fx: &Fixture, conv: &TAdaConv2dConfig, ratio: i64) -> Vec<(String, Tensor)> {
    // What cases.py describes is what we build; it must agree with the json's record of the
    // reference.
    let j = fx.op("TAdaConv2d");
    let [kh, kw] = conv.kernel_size;
    assert_eq!(j["in_channels"], conv.in_channels);
    assert_eq!(j["out_channels"], conv.out_channels);
    assert_eq!(j["kernel_size"], serde_json::json!([1, kh, kw]));
    assert_eq!(
        j["stride"],
        serde_json::json!([1, conv.stride[0], conv.stride[1]])
    );
    assert_eq!(
        j["padding"],
        serde_json::json!([0, conv.padding[0], conv.padding[1]])
    );
    assert_eq!(j["groups"], conv.groups);
    assert_eq!(j["bias"], conv.bias);
    assert_eq!(cal_dim(&j["cal_dim"]), conv.cal_dim);
    let rf_cfg = RouteFuncMLPConfig {
        ratio,
        ..RouteFuncMLPConfig::new(conv.in_channels)
    };
    let j = fx.op("RouteFuncMLP");
    assert_eq!(j["ratio"], rf_cfg.ratio);
    assert_eq!(j["kernels"], serde_json::json!(rf_cfg.kernels));
    assert_eq!(j["bn_eps"].as_f64(), Some(rf_cfg.bn_eps));

    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let rf = RouteFuncMLP::new(&(&root / "b_rf"), &rf_cfg).expect("rf config");
    let op = TAdaConv2d::new(&(&root / "b"), conv).expect("op config");
    fx.load(&vs);
    let x = fx.tensor("__input__");
    tch::no_grad(|| {
        let alpha = rf.forward_t(x, false);
        let y = op.forward_t(x, &alpha, false);
        vec![("__out_b_rf__".into(), alpha), ("__output__".into(), y)]
    })
}

fn v1(case: &str, conv: TAdaConv2dConfig, ratio: i64) {
    let fx = Fixture::open(case);
    let results = run_v1(&fx, &conv, ratio);
    fx.check_all(&results);
}

fn conv3(cin: i64, cout: i64, stride: i64, bias: bool, cal: CalDim) -> TAdaConv2dConfig {
    TAdaConv2dConfig {
        stride: [stride, stride],
        padding: [1, 1],
        bias,
        cal_dim: cal,
        ..TAdaConv2dConfig::new(cin, cout, 3)
    }
}

#[test]
fn tadaconv2d_op_cin_nobias() {
    v1(
        "tadaconv2d_op_cin_nobias",
        conv3(8, 12, 1, false, CalDim::Cin),
        4,
    );
}

#[test]
fn tadaconv2d_op_cin_bias() {
    v1(
        "tadaconv2d_op_cin_bias",
        conv3(8, 12, 1, true, CalDim::Cin),
        4,
    );
}

#[test]
fn tadaconv2d_op_cin_bias_stride2() {
    v1(
        "tadaconv2d_op_cin_bias_stride2",
        conv3(8, 12, 2, true, CalDim::Cin),
        2,
    );
}

#[test]
fn tadaconv2d_op_cout_bias() {
    v1(
        "tadaconv2d_op_cout_bias",
        conv3(8, 8, 1, true, CalDim::Cout),
        4,
    );
}

#[test]
fn tadaconv2d_op_cout_nobias_stride2() {
    v1(
        "tadaconv2d_op_cout_nobias_stride2",
        conv3(8, 8, 2, false, CalDim::Cout),
        4,
    );
}

#[test]
fn tadaconv2d_op_cout_depthwise_k7() {
    let conv = TAdaConv2dConfig {
        padding: [3, 3],
        groups: 8,
        bias: false,
        cal_dim: CalDim::Cout,
        ..TAdaConv2dConfig::new(8, 8, 7)
    };
    v1("tadaconv2d_op_cout_depthwise_k7", conv, 2);
}

/// The comparison must be able to fail: the same weights with the other cal_dim are wrong.
#[test]
fn tadaconv2d_op_check_rejects_wrong_cal_dim() {
    let fx = Fixture::open("tadaconv2d_op_cout_bias");
    let mut conv = conv3(8, 8, 1, true, CalDim::Cin);
    let vs = nn::VarStore::new(Device::Cpu);
    let rf = RouteFuncMLP::new(&(vs.root() / "b_rf"), &RouteFuncMLPConfig::new(8)).expect("rf");
    let op = TAdaConv2d::new(&(vs.root() / "b"), &conv).expect("op");
    fx.load(&vs);
    let x = fx.tensor("__input__");
    let y = tch::no_grad(|| op.forward_t(x, &rf.forward_t(x, false), false));
    assert!(fx.compare("__output__", &y).is_err());
    conv.cal_dim = CalDim::Cout;
    assert!(fx
        .compare("__output__", &run_v1(&fx, &conv, 4)[1].1)
        .is_ok());
}

/// V2 wiring: `y = tadaconv(x, reshape_required=False)` with the internal routing function.
fn v2_config(
    fx: &Fixture,
    c: i64,
    groups: i64,
    cal: CalDim,
    bias: bool,
    rf_r: i64,
) -> TAdaConv2dV2Config {
    let cfg = TAdaConv2dV2Config {
        groups,
        cal_dim: cal,
        bias,
        rf_r,
        head_dim: 8,
        ..TAdaConv2dV2Config::new(c, c, 3)
    };
    let j = fx.op("TAdaConv2dV2");
    assert_eq!(j["in_channels"], cfg.in_channels);
    assert_eq!(j["out_channels"], cfg.out_channels);
    assert_eq!(j["kernel_size"], serde_json::json!([1, 3, 3]));
    assert_eq!(
        j["padding"],
        serde_json::json!([0, cfg.padding[0], cfg.padding[1]])
    );
    assert_eq!(j["groups"], cfg.groups);
    assert_eq!(cal_dim(&j["cal_dim"]), cfg.cal_dim);
    assert_eq!(j["bias"], cfg.bias);
    assert_eq!(j["rf_r"], cfg.rf_r);
    assert_eq!(j["rf_k"], serde_json::json!(cfg.rf_k));
    assert_eq!(j["head_dim"], cfg.head_dim);
    assert_eq!(j["internal_rf_func"], cfg.internal_rf_func);
    assert_eq!(j["internal_temp_aggr"], cfg.internal_temp_aggr);
    cfg
}

fn build_v2(fx: &Fixture, cfg: &TAdaConv2dV2Config) -> (nn::VarStore, TAdaConv2dV2) {
    let vs = nn::VarStore::new(Device::Cpu);
    let op = TAdaConv2dV2::new(&(vs.root() / "tadaconv"), cfg).expect("op config");
    fx.load(&vs);
    (vs, op)
}

fn v2(case: &str, c: i64, groups: i64, cal: CalDim, bias: bool, rf_r: i64) {
    let fx = Fixture::open(case);
    let cfg = v2_config(&fx, c, groups, cal, bias, rf_r);
    let (_vs, op) = build_v2(&fx, &cfg);
    let rf = op.rf_func.as_ref().expect("internal routing function");
    let x = fx.tensor("__input__");
    let results = tch::no_grad(|| {
        let cal = rf.forward_t(x, false);
        let mut results = vec![
            ("__out_tadaconv.rf_func.a__".to_string(), rf.reduce(x)),
            ("__output__".to_string(), op.forward_t(x, None, false)),
        ];
        // A module returning a list is hooked per element (`.0`, `.1`), a tensor as a whole.
        match &cal.bias {
            Some(b) => {
                results.push((
                    "__out_tadaconv.rf_func.0__".into(),
                    cal.weight.shallow_clone(),
                ));
                results.push(("__out_tadaconv.rf_func.1__".into(), b.shallow_clone()));
            }
            None => results.push((
                "__out_tadaconv.rf_func__".into(),
                cal.weight.shallow_clone(),
            )),
        }
        // The internal path must equal passing its calibration explicitly.
        let explicit = op.forward_t(x, Some(&cal), false);
        let internal = &results[1].1;
        assert_eq!((&explicit - internal).abs().max().double_value(&[]), 0.0);
        results
    });
    fx.check_all(&results);
}

#[test]
fn tadaconv2dv2_op_dw_bias_cout() {
    v2(
        "tadaconv2dv2_op_dw_bias_cout",
        32,
        32,
        CalDim::Cout,
        true,
        2,
    );
}

#[test]
fn tadaconv2dv2_op_dense_nobias_cin() {
    v2(
        "tadaconv2dv2_op_dense_nobias_cin",
        16,
        1,
        CalDim::Cin,
        false,
        1,
    );
}

/// The comparison must be able to fail: dropping the bias calibration changes the output.
#[test]
fn tadaconv2dv2_op_check_rejects_uncalibrated_bias() {
    let fx = Fixture::open("tadaconv2dv2_op_dw_bias_cout");
    let cfg = v2_config(&fx, 32, 32, CalDim::Cout, true, 2);
    let (_vs, op) = build_v2(&fx, &cfg);
    let x = fx.tensor("__input__");
    let y = tch::no_grad(|| {
        let rf = op.rf_func.as_ref().expect("internal routing function");
        let weight_only = Calibration {
            weight: rf.forward_t(x, false).weight,
            bias: None,
        };
        op.forward_t(x, Some(&weight_only), false)
    });
    assert!(fx.compare("__output__", &y).is_err());
}
