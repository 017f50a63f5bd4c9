//! HTTP serving for the live report and the proxy's control interface: an axum router
//! served connection by connection through hyper, with a timeout on reading a request's
//! header. A client that connects and sends nothing, or one byte a second, is dropped
//! after [`HEADER_READ_TIMEOUT`] instead of holding a connection (and its task) forever;
//! an idle keep-alive connection is dropped the same way.

use std::future::Future;
use std::time::Duration;

/// How long a client has to send a whole request header, on a new connection or
/// between requests on a kept-alive one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A refused or reset connection, or no descriptor free: not fatal.
                Err(_) => continue,
            },
            () = &mut shutdown => return,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(io, service)
                .await;
        });
    }
}
