//! One election step per invocation (cron, serverless): restore the carried state, step once,
//! export the state again. The caller stores the bytes (the CLI `step` keeps them in a file).

use crate::config::ElectorConfig;
use crate::elector::LeadershipStatus;
use crate::error::Result;
use crate::runtime::{ComponentElector, HostIo, Runtime};
use crate::storage::Storage;
use std::sync::Arc;
use std::time::Duration;

/// What one step concluded.
pub struct StepResult {
    /// Everything the step learnt.
    pub status: LeadershipStatus,
    /// When the election wants the next step.
    pub next_step: Duration,
    /// State to hand to the next invocation.
    pub state: Vec<u8>,
    /// Set when carried state could not be used (the step then started from scratch, which is
    /// always safe: it can only delay a takeover).
    pub discarded_state: Option<String>,
}

/// Runs one step. `state` is what the previous invocation returned, if any.
pub async fn step_once(cfg: &ElectorConfig, storage: Arc<dyn Storage>, state: Option<&[u8]>) -> Result<StepResult> {
    cfg.validate()?;
    let runtime = Runtime::shared()?;
    let io = HostIo {
        storage,
        probe: None,
        on_acquire: cfg.on_acquire_leadership.clone(),
        on_lose: cfg.on_lose_leadership.clone(),
        hook_timeout: cfg.hook_timeout,
        stopping: crate::runtime::Stopping::never(),
        metrics: cfg.metrics.clone(),
    };
    let (mut guest, discarded_state) = match state {
        Some(bytes) => match ComponentElector::create(&runtime, io.clone(), &cfg.core(), Some(bytes)).await {
            Ok(g) => (g, None),
            Err(e) => (ComponentElector::create(&runtime, io, &cfg.core(), None).await?, Some(e.to_string())),
        },
        None => (ComponentElector::create(&runtime, io, &cfg.core(), None).await?, None),
    };
    // One step, one invocation: the status says so if it could never see a leader go.
    guest.set_invocation_budget(Duration::ZERO).await?;
    let outcome = guest.step().await?;
    let state = guest.export_state().await?;
    let status = LeadershipStatus::from_core(&outcome.status, std::time::Instant::now(), None);
    Ok(StepResult { status, next_step: outcome.next_step, state, discarded_state })
}
