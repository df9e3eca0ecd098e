//! A TCP proxy in front of the test PostgreSQL that a test can cut and restore: a database
//! outage, as the gateway sees one, without stopping the shared server.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct TcpProxy {
    listen: SocketAddr,
    upstream: SocketAddr,
    serving: Mutex<Option<JoinHandle<()>>>,
}

impl TcpProxy {
    /// A proxy to the host and port of `database_url`, on a free port.
    pub async fn start(database_url: &str) -> Self {
        let authority = database_url.split('@').nth(1).unwrap().split('/').next().unwrap();
        let upstream = tokio::net::lookup_host(authority).await.unwrap().next().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = listener.local_addr().unwrap();
        let proxy = TcpProxy { listen, upstream, serving: Mutex::new(None) };
        proxy.serve(listener);
        proxy
    }

    /// `database_url`, pointed at the proxy.
    pub fn url(&self, database_url: &str) -> String {
        let authority = database_url.split('@').nth(1).unwrap().split('/').next().unwrap();
        database_url.replacen(authority, &self.listen.to_string(), 1)
    }

    /// Refuses new connections and cuts the open ones.
    pub async fn stop(&self) {
        let serving = self.serving.lock().unwrap().take();
        if let Some(serving) = serving {
            serving.abort();
            let _ = serving.await;
        }
    }

    /// Accepts connections again, on the same port.
    pub async fn resume(&self) {
        let listener = TcpListener::bind(self.listen).await.unwrap();
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let serving = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        *self.serving.lock().unwrap() = Some(serving);
    }
}
