//! A TCP proxy on 127.0.0.1 that cuts every connection after a number of bytes, to test
//! that clients reconnect and resume without losing or duplicating anything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy; dropping it stops accepting (open connections end with their peers).
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    cuts: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`. Each connection is cut (both
    /// sockets closed) once `cut_every_bytes` bytes have passed through it, counting both
    /// directions; the count restarts with every connection, so a client that reconnects
    /// always makes progress. `cut_every_bytes == 0` never cuts.
    pub async fn start(upstream: SocketAddr, cut_every_bytes: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fault proxy");
        let addr = listener.local_addr().expect("proxy address");
        let cuts = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (c2, n2) = (cuts.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                n2.fetch_add(1, Ordering::SeqCst);
                let cuts = c2.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let budget = Arc::new(AtomicU64::new(if cut_every_bytes == 0 {
                        u64::MAX
                    } else {
                        cut_every_bytes
                    }));
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let mut a = tokio::spawn(pipe(cr, sw, budget.clone()));
                    let mut b = tokio::spawn(pipe(sr, cw, budget));
                    let (cut, other) = tokio::select! {
                        r = &mut a => (r.unwrap_or(false), b),
                        r = &mut b => (r.unwrap_or(false), a),
                    };
                    if cut {
                        cuts.fetch_add(1, Ordering::SeqCst);
                        // Close the other direction too: the peers see the cut now.
                        other.abort();
                    } else {
                        let _ = other.await;
                    }
                });
            }
        });
        FaultProxy {
            addr,
            cuts,
            connections,
            accept,
        }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections were cut so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies until EOF or until the shared budget runs out; returns whether it cut.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    budget: Arc<AtomicU64>,
) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return false;
            }
            Ok(n) => n,
        };
        let left = budget.load(Ordering::SeqCst);
        if (n as u64) >= left {
            // Forward part of it, then cut mid-stream.
            let _ = to.write_all(&buf[..left as usize]).await;
            budget.store(0, Ordering::SeqCst);
            return true;
        }
        budget.fetch_sub(n as u64, Ordering::SeqCst);
        if to.write_all(&buf[..n]).await.is_err() {
            return false;
        }
    }
}
