//! An HTTP CONNECT proxy, the kind `HTTPS_PROXY` names: each tunnel it opens goes to one fixed
//! address whatever host the client asked for, and it records what was asked. A test can then
//! use a host name only the proxy can "resolve", and know that the traffic went through it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct ConnectProxy {
    pub addr: SocketAddr,
    /// The authority (`host:port`) of each CONNECT, in order.
    pub asked: Arc<Mutex<Vec<String>>>,
}

/// Starts a CONNECT proxy on a free loopback port whose tunnels all lead to `upstream`.
/// Anything but CONNECT is answered 405.
pub async fn connect_proxy(upstream: SocketAddr) -> ConnectProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            tokio::spawn(tunnel(client, upstream, log.clone()));
        }
    });
    ConnectProxy { addr, asked }
}

async fn tunnel(mut client: TcpStream, upstream: SocketAddr, asked: Arc<Mutex<Vec<String>>>) {
    // The request head, up to its blank line. A client speaks TLS only after our 200, so
    // nothing follows the head yet.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || client.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let (Some("CONNECT"), Some(authority)) = (first.next(), first.next()) else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };
    asked.lock().unwrap().push(authority.to_string());
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
        return;
    };
    if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}
