use super::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// An API server that records each request line and answers 500.
async fn recording_server() -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen_tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = seen_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]);
                let _ = tx.send(text.lines().next().unwrap_or("").to_owned());
                let answer = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n";
                let _ = socket.write_all(answer).await;
            });
        }
    });
    (url, seen)
}

/// A batch computed with parts of generation 2 is not written while generation 1 is the one
/// applied, and is written as soon as 2 is.
#[tokio::test]
async fn a_batch_waits_until_its_parts_are_applied() {
    let (url, mut seen) = recording_server().await;
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let (failed, _failed) = mpsc::channel(8);
    let (tx, rx) = mpsc::unbounded_channel();
    let (applied, applied_rx) = watch::channel(1);
    let stop = CancellationToken::new();
    tokio::spawn(Writer::new(client, failed).run(rx, applied_rx, stop.clone()));
    let patch = |name: &str| StatusPatch::GatewayClass {
        name: name.into(),
        body: json!({"status": {}}),
    };
    tx.send((1, vec![patch("now")])).unwrap();
    let first = timeout(Duration::from_secs(5), seen.recv()).await.unwrap();
    assert!(first.unwrap().contains("/gatewayclasses/now/status"));
    tx.send((2, vec![patch("later")])).unwrap();
    let early = timeout(Duration::from_millis(300), seen.recv()).await;
    assert!(
        early.is_err(),
        "written before its parts were applied: {early:?}"
    );
    applied.send_replace(2);
    let line = timeout(Duration::from_secs(5), seen.recv()).await.unwrap();
    assert!(line.unwrap().contains("/gatewayclasses/later/status"));
    stop.cancel();
}
