//! A scripted origin on raw TCP, for what a well-behaved HTTP server library will not do: send
//! headers or body a few bytes at a time, declare a `Content-Length` the body does not have,
//! or stall. Each path answers with its [`Script`]; unknown paths get a 404.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How one path is answered.
#[derive(Clone, Debug)]
pub struct Script {
    /// Status line and headers, without the blank line that ends them.
    pub head: String,
    pub body: Vec<u8>,
    /// Bytes per write (0 = all at once) and the pause after each.
    pub chunk: usize,
    pub pause: Duration,
    /// Dribble the head too, not only the body.
    pub dribble_head: bool,
    /// Close the connection after the body (otherwise keep it open for the next request).
    pub close: bool,
}

impl Script {
    /// `200` with `Content-Type` and a truthful `Content-Length`, sent at once, kept alive.
    pub fn ok(content_type: &str, body: &[u8]) -> Script {
        Script {
            head: format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}",
                body.len()
            ),
            body: body.to_vec(),
            chunk: 0,
            pause: Duration::ZERO,
            dribble_head: false,
            close: false,
        }
    }

    /// The same answer claiming `len` bytes of body.
    pub fn content_length(mut self, len: usize) -> Script {
        let cut = self.head.find("Content-Length:").unwrap_or(self.head.len());
        self.head.truncate(cut);
        self.head.push_str(&format!("Content-Length: {len}"));
        self
    }

    /// Sends `chunk` bytes every `pause`.
    pub fn dribble(mut self, chunk: usize, pause: Duration, head_too: bool) -> Script {
        self.chunk = chunk;
        self.pause = pause;
        self.dribble_head = head_too;
        self
    }

    /// Closes the connection once the body is written.
    pub fn then_close(mut self) -> Script {
        self.close = true;
        self
    }
}

/// The scripted origin; stops accepting when dropped.
pub struct RawOrigin {
    pub addr: SocketAddr,
    scripts: Arc<Mutex<HashMap<String, Script>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawOrigin {
    /// Starts on an ephemeral loopback port.
    pub async fn start() -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scripts: Arc<Mutex<HashMap<String, Script>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (s, h) = (scripts.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, s.clone(), h.clone()));
            }
        });
        RawOrigin {
            addr,
            scripts,
            hits,
            task,
        }
    }

    /// Answers `path` with `script`.
    pub fn script(&self, path: &str, script: Script) {
        self.scripts
            .lock()
            .expect("lock")
            .insert(path.to_string(), script);
    }

    /// Requests seen for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    scripts: Arc<Mutex<HashMap<String, Script>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request head (GET only: no body to skip).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        *hits.lock().expect("lock").entry(path.clone()).or_insert(0) += 1;
        let script = scripts.lock().expect("lock").get(&path).cloned();
        let script = script.unwrap_or_else(|| {
            let mut s = Script::ok("text/plain", b"raw origin: not found");
            s.head = s.head.replacen("200 OK", "404 Not Found", 1);
            s
        });
        let mut head_bytes = script.head.clone().into_bytes();
        head_bytes.extend_from_slice(b"\r\n\r\n");
        let written = if script.dribble_head {
            send(&mut stream, &head_bytes, script.chunk, script.pause).await
        } else {
            stream.write_all(&head_bytes).await.is_ok()
        };
        if !written || !send(&mut stream, &script.body, script.chunk, script.pause).await {
            return;
        }
        if script.close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Writes `data` in pieces of `chunk` bytes (0 = at once) with `pause` after each; false once
/// the peer has gone.
async fn send(stream: &mut TcpStream, data: &[u8], chunk: usize, pause: Duration) -> bool {
    if chunk == 0 {
        return stream.write_all(data).await.is_ok();
    }
    for piece in data.chunks(chunk) {
        if stream.write_all(piece).await.is_err() {
            return false;
        }
        tokio::time::sleep(pause).await;
    }
    true
}
