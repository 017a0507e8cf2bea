//! Emulation of the cloud–edge link: a TCP relay in front of an edge agent that delays each
//! direction by half the round-trip time and paces bytes at the link's bandwidth, as `tc netem`
//! with a rate would. Everything else on the path (gRPC, HTTP/2, the agent) is real.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One emulated link: `name:rtt_ms:mbit_per_s`, e.g. `metro:20:100`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkSetting {
    pub name: String,
    pub rtt_ms: f64,
    pub mbit_per_s: f64,
}

impl LinkSetting {
    fn one_way(&self) -> Duration {
        Duration::from_secs_f64(self.rtt_ms / 2000.0)
    }

    fn bytes_per_second(&self) -> f64 {
        self.mbit_per_s * 1e6 / 8.0
    }
}

impl FromStr for LinkSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split(':').collect();
        let [name, rtt, rate] = parts.as_slice() else {
            return Err(format!("{text:?}: expected name:rtt_ms:mbit_per_s"));
        };
        let number = |s: &str| s.parse::<f64>().map_err(|e| format!("{text:?}: {e}"));
        let (rtt_ms, mbit_per_s) = (number(rtt)?, number(rate)?);
        if rtt_ms < 0.0 || mbit_per_s <= 0.0 {
            return Err(format!("{text:?}: needs rtt_ms >= 0 and mbit_per_s > 0"));
        }
        Ok(Self { name: (*name).to_owned(), rtt_ms, mbit_per_s })
    }
}

/// A listening relay; stops accepting when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a relay on 127.0.0.1 that forwards every connection to `target` over `link`.
pub async fn relay(target: SocketAddr, link: LinkSetting) -> anyhow::Result<Relay> {
    if link.bytes_per_second() <= 0.0 {
        bail!("link {} has no bandwidth", link.name);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a link relay")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let link = link.clone();
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(target).await {
                    connect(client, server, &link);
                }
            });
        }
    });
    Ok(Relay { addr, task })
}

fn connect(client: TcpStream, server: TcpStream, link: &LinkSetting) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::spawn(pipe(client_read, server_write, link.one_way(), link.bytes_per_second()));
    tokio::spawn(pipe(server_read, client_write, link.one_way(), link.bytes_per_second()));
}

/// Copies one direction: each read chunk leaves once the link has serialised it (bandwidth,
/// in order behind earlier chunks) and it has propagated (one-way delay).
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, one_way: Duration, bytes_per_second: f64) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0u8; 16 * 1024];
    let mut wire_free = Instant::now();
    while let Ok(read) = from.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let serialised = Duration::from_secs_f64(read as f64 / bytes_per_second);
        wire_free = wire_free.max(Instant::now()) + serialised;
        if tx.send((wire_free + one_way, buffer[..read].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn link_settings_parse_from_name_rtt_and_rate() {
        let link: LinkSetting = "wan:60:20".parse().unwrap();
        assert_eq!(link, LinkSetting { name: "wan".into(), rtt_ms: 60.0, mbit_per_s: 20.0 });
        assert_eq!(link.one_way(), Duration::from_millis(30));
        assert!("wan:60".parse::<LinkSetting>().is_err());
        assert!("wan:60:0".parse::<LinkSetting>().is_err());
    }

    #[tokio::test]
    async fn a_relay_delays_a_round_trip_by_the_links_rtt() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = echo.accept().await.unwrap();
            let mut byte = [0u8; 1];
            socket.read_exact(&mut byte).await.unwrap();
            socket.write_all(&byte).await.unwrap();
        });
        let relay = relay(target, "test:80:100".parse().unwrap()).await.unwrap();
        let mut socket = TcpStream::connect(relay.addr).await.unwrap();
        let started = std::time::Instant::now();
        socket.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(80), "{:?}", started.elapsed());
    }
}
