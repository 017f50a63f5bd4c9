//! The live page: `report --serve` and `run --serve` serve the report over HTTP (axum on
//! a tokio runtime of its own thread) and re-render it from the files as they grow. A
//! request renders at most once per [`FRESH_FOR`]; the page reloads itself every
//! [`RELOAD_S`] seconds with a `<meta http-equiv="refresh">`, so it needs no script.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::page::{render, Refresh};
use super::{collect, ReportPlan, RunFiles};

/// A page younger than this is served again instead of re-rendered.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// How often the served page reloads itself.
pub const RELOAD_S: u32 = 5;

/// Parses `--serve`: `PORT` (on 127.0.0.1) or `HOST:PORT`.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!(
            "{text:?}: expected PORT (served on 127.0.0.1) or HOST:PORT, such as 127.0.0.1:8080"
        )
    })
}

/// What the handler renders from, and its last page.
struct Source {
    files: RunFiles,
    plan: ReportPlan,
    last: Mutex<Option<(Instant, String)>>,
}

impl Source {
    /// The current page, rendered anew when the last one is older than [`FRESH_FOR`].
    fn page(&self) -> Result<String, String> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, page)) = last.as_ref() {
            if at.elapsed() < FRESH_FOR {
                return Ok(page.clone());
            }
        }
        let pm = collect(&self.files, &self.plan).map_err(|e| crate::error_text(&e))?;
        let page = render(&pm, Refresh::EverySeconds(RELOAD_S));
        *last = Some((Instant::now(), page.clone()));
        Ok(page)
    }
}

/// A running server; dropping it stops it.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` now (so a taken port is an error here, and port 0 is resolved) and
    /// serves the report of `files` from a thread of its own.
    pub fn start(addr: SocketAddr, files: RunFiles, plan: ReportPlan) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("soakcheck-report")
            .enable_io()
            .enable_time()
            .build()?;
        let source = Arc::new(Source {
            files,
            plan,
            last: Mutex::new(None),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("soakcheck-report".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let page = move || {
                        let source = Arc::clone(&source);
                        async move { respond(source).await }
                    };
                    let app = axum::Router::new()
                        .route("/", get(page.clone()))
                        .route("/report.html", get(page));
                    crate::http::serve(listener, app, async {
                        let _ = stopped.await;
                    })
                    .await;
                });
            })?;
        Ok(Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Blocks until SIGINT or SIGTERM.
pub fn wait_for_interrupt() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let _ = signals.forever().next();
    Ok(())
}

/// Renders off the runtime's thread (reading a sink directory is blocking work).
async fn respond(source: Arc<Source>) -> Response {
    let page = tokio::task::spawn_blocking(move || source.page()).await;
    match page {
        Ok(Ok(page)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
        }
        Ok(Err(e)) => error_page(&e),
        Err(e) => error_page(&e.to_string()),
    }
}

fn error_page(message: &str) -> Response {
    let body = maud::html! {
        (maud::DOCTYPE)
        html { head { meta charset="utf-8"; meta http-equiv="refresh" content=(RELOAD_S); title { "soakcheck report: error" } }
            body { h1 { "The report could not be made" } pre { (message) } } }
    };
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.into_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_is_served_on_loopback() {
        assert_eq!(
            parse_addr("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            parse_addr("127.0.0.5:0").unwrap(),
            "127.0.0.5:0".parse().unwrap()
        );
        assert!(parse_addr("localhost").unwrap_err().contains("HOST:PORT"));
    }
}
