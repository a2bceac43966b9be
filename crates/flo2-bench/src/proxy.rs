//! The floor: a bare reverse proxy (hyper server, pooled keep-alive hyper client) that forwards
//! every request to the fake upstream untouched and streams the answer back. flo2's throughput
//! and added latency are read against it, so they say what the gateway's own work costs.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Serves on `listen`, forwarding to `http://{upstream}`, until the process is killed.
pub async fn run(listen: SocketAddr, upstream: String) {
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    let listener = TcpListener::bind(listen).await.expect("bind the proxy");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let forward = service_fn(move |mut req: Request<Incoming>| {
                let client = client.clone();
                let uri = format!(
                    "http://{upstream}{}",
                    req.uri().path_and_query().map_or("/", |p| p.as_str())
                );
                *req.uri_mut() = uri.parse::<Uri>().expect("an upstream URI");
                req.headers_mut().remove(HOST);
                async move { client.request(req).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), forward)
                .await;
        });
    }
}
