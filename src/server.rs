//! HTTP: `/metrics`, `/healthz` (fails once the kmsg reader has stopped), `/`.

use crate::metrics::Metrics;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::{Arc, Mutex};

pub struct App {
    pub metrics: Metrics,
    /// Why the kmsg reader stopped, once it has.
    pub stopped: Mutex<Option<String>>,
}

const INDEX: &str =
    "<!doctype html><html><head><title>oomwatch</title></head><body><h1>oomwatch</h1>\
<p>Kernel OOM kills on this node, decoded.</p><ul><li><a href=\"/metrics\">/metrics</a></li>\
<li><a href=\"/healthz\">/healthz</a></li></ul></body></html>\n";

fn reply(status: StatusCode, ctype: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = ctype.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

pub fn handle(app: &App, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            app.metrics.text(),
        ),
        "/healthz" => match app.stopped.lock().map(|s| s.clone()).unwrap_or(None) {
            None => reply(StatusCode::OK, "text/plain", "ok\n".into()),
            Some(why) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("kmsg reader stopped: {why}\n"),
            ),
        },
        "/" => reply(StatusCode::OK, "text/html; charset=utf-8", INDEX.into()),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let r = handle(&app, &req);
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}
