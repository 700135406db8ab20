//! The training loop's side of a distributed run (docs/distributed.md): what DDP does around a
//! step. At the start every rank takes rank 0's weights and buffers; each step the BatchNorm
//! buffers follow rank 0's again (DDP's `broadcast_buffers`), the Reducer averages gradients
//! while backward runs, and the loss, metrics and the decision to stop are agreed by all ranks.

use tch::Tensor;

use super::TrainError;
use crate::dist::{GradReducer, World};
use crate::models::Session;
use crate::optim::Optimizer;

/// DDP's defaults: 25 MiB buckets, the first (the last layers') 1 MiB.
const BUCKET_BYTES: i64 = 25 << 20;
const FIRST_BUCKET_BYTES: i64 = 1 << 20;

/// BatchNorm state DDP broadcasts from rank 0 before every forward pass.
fn is_buffer(name: &str) -> bool {
    ["running_mean", "running_var", "num_batches_tracked"]
        .iter()
        .any(|b| name.ends_with(b))
}

pub(super) struct DataParallel {
    pub world: &'static World,
    reducer: GradReducer,
    buffers: Vec<Tensor>,
}

impl DataParallel {
    /// In a distributed run: rank 0's variables to every rank (whatever each built or resumed),
    /// and a Reducer over the optimiser's parameters. `None` in a single process.
    pub fn start(session: &Session, opt: &Optimizer) -> Result<Option<Self>, TrainError> {
        let Some(world) = crate::dist::world() else {
            return Ok(None);
        };
        // Sorted by name: every rank lists its variables in the same order.
        let mut vars: Vec<(String, Tensor)> = session.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let all: Vec<Tensor> = vars.iter().map(|(_, t)| t.shallow_clone()).collect();
        world.broadcast_from_rank0(&all).map_err(TrainError::dist)?;
        let buffers = vars
            .iter()
            .filter(|(n, _)| is_buffer(n))
            .map(|(_, t)| t.shallow_clone())
            .collect();
        let params = opt.params();
        let reducer = GradReducer::new(
            &world.group,
            &params,
            BUCKET_BYTES,
            FIRST_BUCKET_BYTES,
            // DDP's default: every parameter the optimiser steps gets a gradient each step in
            // tada's models (frozen ones are not the optimiser's), so no graph walk per step.
            false,
        )
        .map_err(TrainError::dist)?;
        Ok(Some(Self {
            world,
            reducer,
            buffers,
        }))
    }

    /// Rank 0's BatchNorm running statistics to every rank, before the step's forward passes.
    pub fn sync_buffers(&self) -> Result<(), TrainError> {
        if self.buffers.is_empty() {
            return Ok(());
        }
        self.world
            .broadcast_from_rank0(&self.buffers)
            .map_err(TrainError::dist)
    }

    /// Arms the Reducer for the backward pass from `loss` (the step's last chunk; earlier
    /// chunks accumulate locally, as under DDP's `no_sync`).
    pub fn arm(&self, loss: &Tensor) -> Result<(), TrainError> {
        self.reducer.prepare(&[loss]).map_err(TrainError::dist)
    }

    /// The largest |loss| of any rank's chunk (NaN when one is not finite), so that every rank
    /// takes the same way: no rank goes into a backward pass whose all-reduce another rank
    /// skips.
    pub fn worst(&self, value: f64) -> Result<f64, TrainError> {
        let bad = f64::from(u8::from(!value.is_finite()));
        let any_bad = self.world.sum(&[bad]).map_err(TrainError::dist)?[0] > 0.0;
        Ok(if any_bad && value.is_finite() {
            f64::NAN
        } else {
            value
        })
    }

    /// The mean over ranks of the step's loss and metrics, in place: what one process
    /// training the global batch logs.
    pub fn global_metrics(
        &self,
        loss: &mut f64,
        metrics: &mut [(String, f64)],
    ) -> Result<(), TrainError> {
        let mut values = vec![*loss];
        values.extend(metrics.iter().map(|(_, v)| *v));
        let mean = self.world.mean(&values).map_err(TrainError::dist)?;
        *loss = mean[0];
        for ((_, v), m) in metrics.iter_mut().zip(&mean[1..]) {
            *v = *m;
        }
        Ok(())
    }

    /// Whether any rank was asked to stop (a signal, the step limit): every rank stops after
    /// the same step, so rank 0's checkpoint holds the state all of them reached.
    pub fn any(&self, local: bool) -> Result<bool, TrainError> {
        let v = self
            .world
            .sum(&[f64::from(u8::from(local))])
            .map_err(TrainError::dist)?;
        Ok(v.first().copied().unwrap_or(0.0) > 0.0)
    }
}
