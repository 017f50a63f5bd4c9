//! The proxy's control interface: loopback HTTP with JSON bodies, on the proxy's own
//! runtime.
//!
//! - `GET /links`: every link's listen and upstream addresses, its faults per
//!   direction, bytes forwarded and connections.
//! - `POST /links/NAME` (the name percent-encoded: `worker1-%3Esink`) with `{"fault": F, "direction": "both"|"up"|"down"}`, where F is
//!   `"partition"`, `{"reset":{"refuse_ms":2000}}`, `{"delay":{"ms":100,"jitter_ms":20}}`,
//!   `{"bandwidth":{"bytes_per_s":65536}}`, `"slice"` or `"heal"`: 200 with the link's
//!   new state, 404 for an unknown link, 400 (or 422) for a body that is not a request.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Json;

use super::{Directions, Fault, Proxy, ProxyError};

/// A request to change a link.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaultRequest {
    pub fault: Fault,
    #[serde(default)]
    pub direction: Directions,
}

/// Serves the control interface of `proxy` on `addr`; returns the address bound.
pub fn serve(proxy: Arc<Proxy>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let handle = proxy.handle();
    let listener = {
        let _guard = handle.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let app = axum::Router::new()
        .route("/links", get(links))
        .route("/links/{name}", post(change))
        .with_state(proxy);
    handle.spawn(crate::http::serve(listener, app, std::future::pending()));
    Ok(bound)
}

async fn links(State(proxy): State<Arc<Proxy>>) -> Json<Vec<super::LinkStatus>> {
    Json(proxy.status())
}

async fn change(
    State(proxy): State<Arc<Proxy>>,
    Path(name): Path<String>,
    Json(request): Json<FaultRequest>,
) -> Result<Json<super::LinkStatus>, (StatusCode, String)> {
    match proxy.apply(&name, request.direction, request.fault) {
        Ok(()) => {
            let status = proxy.status().into_iter().find(|l| l.name == name);
            status
                .map(Json)
                .ok_or((StatusCode::NOT_FOUND, format!("link {name:?}: gone")))
        }
        Err(e @ ProxyError::UnknownLink(..)) => Err((StatusCode::NOT_FOUND, e.to_string())),
        Err(e @ ProxyError::BadFault(..)) => Err((StatusCode::BAD_REQUEST, e.to_string())),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}
