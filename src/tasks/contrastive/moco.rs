//! MoCo v2's key side: a momentum copy of the model encodes the key view, and a queue of past
//! keys supplies the negatives. Every piece lives in the run's VarStore (under
//! [`KEY_ENCODER_PATH`] and `contrastive.`), so checkpoints and `--resume` cover it.

use tch::nn::{Init, VarStore};
use tch::{Kind, Tensor};

use super::embedding::embedding;
use super::loss::{moco_info_nce, Contrast};
use crate::config::schema::ContrastiveSection;
use crate::config::Config;
use crate::models::Session;
use crate::models::VideoModel;
use crate::tasks::TaskError;

/// Variable path of MoCo's key encoder (`momentum_encoder.backbone.…`).
pub const KEY_ENCODER_PATH: &str = "momentum_encoder";

/// The key encoder, its momentum pairs and the queue.
pub(super) struct KeyEncoder {
    encoder: VideoModel,
    /// `(key parameter, query parameter)`: the momentum update pairs.
    pairs: Vec<(Tensor, Tensor)>,
    momentum: f64,
    /// `(K, D)` L2-normalised past keys (a non-trainable variable).
    queue: Tensor,
    /// `(1)` next row of the queue to overwrite, stored as a float so it checkpoints with the
    /// other variables (exact below 2^24 rows).
    ptr: Tensor,
    /// Keys of the current step, enqueued after the optimiser step.
    pending: Option<Tensor>,
}

impl KeyEncoder {
    /// A copy of the model under [`KEY_ENCODER_PATH`], with its parameters frozen to autograd
    /// and equal to the query encoder's, and the queue of random unit keys MoCo starts from.
    pub fn new(session: &Session, cfg: &Config) -> Result<Self, TaskError> {
        let root = session.vs.root();
        let encoder = VideoModel::new(&(&root / KEY_ENCODER_PATH), cfg)?;
        let pairs = tie_to_query(&session.vs)?;
        let c = &cfg.pretrain.contrastive;
        let (queue, ptr) = queue(&session.vs, c);
        Ok(Self {
            encoder,
            pairs,
            momentum: c.momentum,
            queue,
            ptr,
            pending: None,
        })
    }

    /// MoCo's loss for query view `v1` and key view `v2`. With `key_grad` (ParamCrop's key
    /// crop learns too) the key branch runs outside no_grad: its weights are frozen to
    /// autograd, not its input.
    pub fn contrast(
        &mut self,
        model: &VideoModel,
        v1: &Tensor,
        v2: &Tensor,
        key_grad: bool,
        temperature: f64,
    ) -> Result<Contrast, TaskError> {
        let q = embedding(model, v1)?;
        let (k, all_keys) = match crate::dist::world() {
            Some(w) => shuffled_keys(&self.encoder, v2, key_grad, w)?,
            None => {
                let k = if key_grad {
                    embedding(&self.encoder, v2)?
                } else {
                    tch::no_grad(|| embedding(&self.encoder, &v2.detach()))?
                };
                let all = k.detach();
                (k, all)
            }
        };
        let c = moco_info_nce(&q, &k, &self.queue, temperature);
        // Every rank enqueues the keys of the global batch, in rank order: the queue stays
        // the same on every rank.
        self.pending = Some(all_keys);
        Ok(c)
    }

    /// After the optimiser step: the momentum update of the key encoder, then this step's keys
    /// into the queue.
    pub fn after_step(&mut self) {
        let m = self.momentum;
        tch::no_grad(|| {
            for (k, q) in &self.pairs {
                let mut k = k.shallow_clone();
                let _ = k.g_mul_scalar_(m).g_add_(&(q * (1.0 - m)));
            }
            if let Some(keys) = self.pending.take() {
                let rows = self.queue.size()[0];
                let start = self.ptr.double_value(&[0]) as i64;
                let n = keys.size()[0];
                // Ring buffer: rows start, start+1, … modulo the queue length.
                let idx = (Tensor::arange(n, (Kind::Int64, keys.device())) + start).remainder(rows);
                let _ = self.queue.shallow_clone().index_copy_(
                    0,
                    &idx,
                    &keys.to_kind(self.queue.kind()),
                );
                let _ = self.ptr.shallow_clone().fill_(((start + n) % rows) as f64);
            }
        });
    }
}

/// MoCo's keys in a distributed run, with its shuffling BN: the key views of all ranks are
/// gathered, dealt out again in an order shared by every rank (drawn from the step's seed),
/// encoded, gathered back and put in their original order, so the key encoder's BatchNorm never
/// sees a rank's own videos together (a shortcut its statistics would otherwise offer). Returns
/// this rank's keys (with gradients when `key_grad`) and every rank's keys, detached.
///
/// # Shapes
/// `v2`: `(B, C, T, H, W)` per rank -> `(B, D)` and `(W·B, D)`.
fn shuffled_keys(
    encoder: &VideoModel,
    v2: &Tensor,
    key_grad: bool,
    w: &crate::dist::World,
) -> Result<(Tensor, Tensor), TaskError> {
    let (b, r) = (v2.size()[0], w.placement.rank as i64);
    let n = b * w.placement.world_size as i64;
    let encode = |v2: &Tensor| -> Result<(Tensor, Tensor), TaskError> {
        // (W·B, C, T, H, W): every rank's key views, rank order.
        let all = match key_grad {
            true => w.group.all_gather_grad(v2)?,
            false => w.group.all_gather(&v2.detach())?,
        };
        // One permutation for every rank: rank 0 draws it.
        let perm = Tensor::randperm(n, (Kind::Int64, v2.device()));
        w.group.broadcast(&[&perm], 0)?;
        let mine = all.index_select(0, &perm.narrow(0, r * b, b));
        let k = embedding(encoder, &mine)?;
        // (W·B, D) in shuffled order -> original order.
        let gathered = match key_grad {
            true => w.group.all_gather_grad(&k)?,
            false => w.group.all_gather(&k)?,
        };
        let keys = gathered.index_select(0, &perm.argsort(0, false));
        Ok((keys.narrow(0, r * b, b), keys.detach()))
    };
    match key_grad {
        true => encode(v2),
        false => tch::no_grad(|| encode(v2)),
    }
}

/// Copies every query variable into its key twin and freezes the twin; returns the
/// `(key, query)` pairs of trainable parameters for the momentum update.
fn tie_to_query(vs: &VarStore) -> Result<Vec<(Tensor, Tensor)>, TaskError> {
    let vars = vs.variables();
    let prefix = format!("{KEY_ENCODER_PATH}.");
    let mut pairs = Vec::new();
    tch::no_grad(|| -> Result<(), TaskError> {
        for (name, k) in &vars {
            let Some(q_name) = name.strip_prefix(&prefix) else {
                continue;
            };
            let q = vars.get(q_name).ok_or_else(|| {
                TaskError::Invalid(format!("key encoder variable {name} has no query twin"))
            })?;
            let mut k = k.shallow_clone();
            k.copy_(q);
            if q.requires_grad() {
                k = k.set_requires_grad(false);
                pairs.push((k, q.shallow_clone()));
            } else {
                // Buffers (BN statistics) are copied once and then follow the key encoder's own
                // forward passes.
                let _ = k.set_requires_grad(false);
            }
        }
        Ok(())
    })?;
    Ok(pairs)
}

/// The queue `(QUEUE_SIZE, HEAD_OUT_DIM)` of random unit keys and its write pointer, as
/// non-trainable variables under `contrastive.`.
fn queue(vs: &VarStore, c: &ContrastiveSection) -> (Tensor, Tensor) {
    let dim = c.head_out_dim as i64;
    let store = vs.root() / "contrastive";
    let queue = store.var("queue", &[c.queue_size as i64, dim], Init::Const(0.0));
    let ptr = store.var("queue_ptr", &[1], Init::Const(0.0));
    tch::no_grad(|| {
        let q = Tensor::randn([c.queue_size as i64, dim], (Kind::Float, vs.device()));
        let norm = q.norm_scalaropt_dim(2, [1i64].as_slice(), true);
        queue.shallow_clone().copy_(&(q / norm));
    });
    (queue.set_requires_grad(false), ptr.set_requires_grad(false))
}
