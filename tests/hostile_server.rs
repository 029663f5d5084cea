//! The default transport against a hostile server on loopback: bodies larger than allowed, announced or not, and a
//! server that drips one byte at a time. Each ends with a typed error, promptly, without buffering it all.
#![cfg(feature = "reqwest")]

use std::time::{Duration, Instant};

use bytes::Bytes;
use dataverse_mi::http::{ReqwestOptions, ReqwestTransport, Transport, TransportErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves one connection: reads the request's head, then runs `answer` on the socket.
async fn serve<F, Fut>(answer: F) -> String
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && socket.read(&mut byte).await.unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        answer(socket).await;
    });
    url
}

fn transport(options: ReqwestOptions) -> ReqwestTransport {
    ReqwestTransport::new(options).unwrap()
}

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::builder().uri(url).body(Bytes::new()).unwrap()
}

#[tokio::test]
async fn an_announced_body_over_the_limit_is_refused_before_reading_it() {
    let url = serve(|mut s| async move {
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n").await.unwrap();
        // The body never comes: a client that tried to read it would hang until its timeout.
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let t = transport(ReqwestOptions { max_body_bytes: 1_000_000, ..ReqwestOptions::default() });
    let started = Instant::now();
    let err = t.send(get(&url)).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::BodyTooLarge, "{err}");
    assert!(err.to_string().contains("over 1000000 bytes"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_cut_off() {
    let url = serve(|mut s| async move {
        s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        // Up to 16 MiB, far more than allowed; the client stops reading long before.
        for _ in 0..256 {
            let head = format!("{:x}\r\n", chunk.len());
            if s.write_all(head.as_bytes()).await.is_err()
                || s.write_all(&chunk).await.is_err()
                || s.write_all(b"\r\n").await.is_err()
            {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    })
    .await;
    let t = transport(ReqwestOptions { max_body_bytes: 256 * 1024, ..ReqwestOptions::default() });
    let err = t.send(get(&url)).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::BodyTooLarge, "{err}");
}

#[tokio::test]
async fn a_server_that_drips_is_ended_by_the_total_deadline() {
    let url = serve(|mut s| async move {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n").await;
        // One byte every 20 ms: each read is quick, so the read timeout alone would never fire.
        for _ in 0..1000 {
            if s.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let t = transport(ReqwestOptions {
        read_timeout: Duration::from_secs(10),
        total_timeout: Duration::from_millis(400),
        ..ReqwestOptions::default()
    });
    let started = Instant::now();
    let err = t.send(get(&url)).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}
