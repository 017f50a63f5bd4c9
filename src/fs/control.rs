//! The layer's control interface: loopback HTTP with JSON bodies, in the proxy's style.
//! Each call answers once its effect is complete.
//!
//! - `POST /lose-unsynced`: the power cut. Every write and entry operation not durable
//!   is taken back, the kernel's caches of them dropped; 200 with what was lost
//!   (`{"files": {"/out.worker1": 4096}, "bytes": 4096, "entries": [...], "torn": {}}`).
//! - `POST /checkpoint`: everything durable without a power cut; 200 with what was not.
//! - `GET /unsynced`: what is not durable now, per path, and the pending entry operations.
//! - `POST /faults` with a [`FaultRequest`]: 200, or 400 with why it was refused.
//! - `DELETE /faults`: every fault removed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};

use super::faults::FaultRequest;
use super::layer::Layer;

/// What the handlers share: the layer, and what drops the kernel's caches after a cut.
#[derive(Clone)]
pub struct Control {
    pub layer: Arc<Mutex<Layer>>,
    pub notifier: Option<fuser::Notifier>,
}

type Answer = (StatusCode, Json<Value>);

fn failed(e: impl std::fmt::Display) -> Answer {
    let body = json!({ "error": e.to_string() });
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body))
}

impl Control {
    fn layer(&self) -> std::sync::MutexGuard<'_, Layer> {
        self.layer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The power cut (see [`cut`]), as an answer.
    pub fn lose_unsynced(&self) -> Answer {
        match cut(&self.layer, self.notifier.as_ref()) {
            Ok(lost) => (StatusCode::OK, Json(json!(lost))),
            Err(e) => failed(e),
        }
    }
}

/// The power cut, then the kernel told to forget every inode the layer knows (its
/// cached pages and attributes), outside the layer's lock.
pub fn cut(
    layer: &Mutex<Layer>,
    notifier: Option<&fuser::Notifier>,
) -> std::io::Result<super::layer::Lost> {
    let (lost, inodes) = {
        let mut layer = layer.lock().unwrap_or_else(|p| p.into_inner());
        let lost = layer.lose_unsynced()?;
        (lost, layer.nodes.known())
    };
    if let Some(n) = notifier {
        for (ino, place) in inodes {
            let _ = n.inval_inode(fuser::INodeNo(ino), 0, -1);
            if let Some((dir, name)) = place {
                let _ = n.inval_entry(fuser::INodeNo(dir), &name);
            }
        }
    }
    Ok(lost)
}

async fn lose_unsynced(State(c): State<Control>) -> Answer {
    tokio::task::spawn_blocking(move || c.lose_unsynced())
        .await
        .unwrap_or_else(failed)
}

async fn checkpoint(State(c): State<Control>) -> Answer {
    let done = tokio::task::spawn_blocking(move || c.layer().checkpoint()).await;
    match done {
        Ok(Ok(was)) => (StatusCode::OK, Json(json!(was))),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

async fn unsynced(State(c): State<Control>) -> Answer {
    (StatusCode::OK, Json(json!(c.layer().unsynced())))
}

async fn add_fault(State(c): State<Control>, Json(req): Json<FaultRequest>) -> Answer {
    match c.layer().faults.add(&req) {
        Ok(()) => (StatusCode::OK, Json(json!({ "added": req }))),
        Err(why) => (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))),
    }
}

async fn clear_faults(State(c): State<Control>) -> Answer {
    c.layer().faults.clear();
    (StatusCode::OK, Json(json!({ "faults": 0 })))
}

/// Serves the control interface on `addr` on `runtime`; returns the address bound.
pub fn serve(
    control: Control,
    addr: SocketAddr,
    runtime: &tokio::runtime::Runtime,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let app = axum::Router::new()
        .route("/lose-unsynced", post(lose_unsynced))
        .route("/checkpoint", post(checkpoint))
        .route("/unsynced", get(unsynced))
        .route("/faults", post(add_fault).delete(clear_faults))
        .with_state(control);
    runtime.spawn(crate::http::serve(listener, app, std::future::pending()));
    Ok(bound)
}
