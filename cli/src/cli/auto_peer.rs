//! Peer mode by default for `s3lect run`: with no peer or health settings given, a node serves
//! its health endpoint on the address it reaches the storage from, on a free port, and
//! publishes that address and its certificate's pin in the records it writes. Followers that
//! can reach it watch it instead of polling S3; followers that cannot fall back to polling.

use hyper_util::client::proxy::matcher::Matcher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};

/// The health endpoint's socket, bound before the elector exists: its address goes into the
/// records the elector writes.
#[derive(Debug)]
pub struct Bound {
    pub listener: TcpListener,
    pub addr: SocketAddr,
}

/// Binds a free port on the address this host reaches `endpoint` from (loopback for storage on
/// this machine, or without an endpoint: mock storage).
pub fn bind(endpoint: Option<&str>) -> Result<Bound, String> {
    // The S3 client reads its proxy from the environment the same way (reqwest uses this
    // matcher).
    bind_via(endpoint, &Matcher::from_system())
}

/// As [`bind`], with the proxy rules given. Where a proxy carries the storage's traffic, the
/// route that matters is the one to the proxy: behind it the storage's name often does not
/// resolve at all, and the proxy is where this host's traffic leaves from.
fn bind_via(endpoint: Option<&str>, proxies: &Matcher) -> Result<Bound, String> {
    let ip = match endpoint {
        Some(url) => match url.parse::<http::Uri>().ok().and_then(|uri| proxies.intercept(&uri)) {
            Some(proxy) => local_ip_toward(&proxy.uri().to_string(), "the proxy")
                .map_err(|e| format!("{e} (the proxy for {url}, from HTTPS_PROXY or the like)"))?,
            None => local_ip_toward(url, "endpoint")?,
        },
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let listener = TcpListener::bind((ip, 0)).map_err(|e| format!("cannot listen on {ip}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    Ok(Bound { listener, addr })
}

/// The local address of the route to `url`'s host. A connected UDP socket sends nothing; the
/// kernel only picks the route, so this costs one DNS lookup.
fn local_ip_toward(url: &str, what: &str) -> Result<IpAddr, String> {
    let (host, port) = host_port(url, what)?;
    let remote = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let any: SocketAddr = if remote.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(any).map_err(|e| format!("cannot open a socket: {e}"))?;
    socket.connect(remote).map_err(|e| format!("no route to {remote}: {e}"))?;
    let ip = socket.local_addr().map_err(|e| format!("cannot read the local address: {e}"))?.ip();
    if ip.is_unspecified() {
        return Err(format!("no local address routes to {remote}"));
    }
    Ok(ip)
}

/// Host and port of an `http(s)://host[:port][/path]` URL (or a SOCKS proxy's), the port
/// defaulting by scheme. `what` names the URL in errors.
fn host_port(url: &str, what: &str) -> Result<(String, u16), String> {
    let bad = || format!("{what} {url:?} is not an http(s)://host[:port] URL");
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    let default_port = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => 443,
        Some("http") => 80,
        Some("socks4" | "socks4a" | "socks5" | "socks5h") => 1080,
        _ => return Err(bad()),
    };
    let (Some(authority), Some(host)) = (uri.authority(), uri.host().filter(|h| !h.is_empty())) else { return Err(bad()) };
    // `Uri` reads a port that is not a number as none at all: look at what follows the host.
    let host_and_port = authority.as_str().rsplit_once('@').map_or(authority.as_str(), |(_, a)| a);
    let port = match host_and_port.strip_prefix(host).ok_or_else(bad)? {
        "" => default_port,
        rest => rest.strip_prefix(':').and_then(|p| p.parse().ok()).ok_or_else(bad)?,
    };
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_give_host_and_port() {
        let hp = |u: &str| host_port(u, "endpoint").unwrap();
        assert_eq!(hp("http://127.0.0.1:8333"), ("127.0.0.1".into(), 8333));
        assert_eq!(hp("https://s3.eu-west-1.amazonaws.com"), ("s3.eu-west-1.amazonaws.com".into(), 443));
        assert_eq!(hp("http://minio.local/some/path"), ("minio.local".into(), 80));
        assert_eq!(hp("https://[::1]:9000/"), ("::1".into(), 9000));
        assert_eq!(hp("HTTPS://user@host:1"), ("host".into(), 1));
        for bad in ["127.0.0.1:8333", "ftp://h", "http://", "http://h:port", "http://[::1"] {
            let e = host_port(bad, "endpoint").expect_err(bad);
            assert!(e.contains(bad) && e.starts_with("endpoint"), "{bad}: {e}");
        }
    }

    #[test]
    fn loopback_storage_gives_a_loopback_endpoint() {
        let b = bind(Some("http://127.0.0.1:9")).unwrap();
        assert!(b.addr.ip().is_loopback() && b.addr.port() != 0, "{}", b.addr);
        assert_eq!(b.listener.local_addr().unwrap(), b.addr);
        let mock = bind(None).unwrap();
        assert!(mock.addr.ip().is_loopback(), "{}", mock.addr);
    }

    #[test]
    fn an_unresolvable_endpoint_is_named() {
        let e = bind_via(Some("http://no-such-host.invalid:80"), &Matcher::builder().build()).unwrap_err();
        assert!(e.contains("no-such-host.invalid"), "{e}");
    }

    /// Behind a proxy the storage's name need not resolve: the route to the proxy gives the
    /// address. NO_PROXY still sends a name to the direct route.
    #[test]
    fn behind_a_proxy_the_route_to_the_proxy_gives_the_address() {
        let proxies = Matcher::builder().https("http://127.0.0.1:3128").no("direct.invalid").build();
        let b = bind_via(Some("https://s3.example.invalid"), &proxies).unwrap();
        assert!(b.addr.ip().is_loopback(), "{}", b.addr);
        let e = bind_via(Some("https://direct.invalid"), &proxies).unwrap_err();
        assert!(e.contains("cannot resolve direct.invalid"), "{e}");
        // Plain-HTTP storage is not sent to an HTTPS proxy.
        let e = bind_via(Some("http://s3.example.invalid"), &proxies).unwrap_err();
        assert!(e.contains("cannot resolve s3.example.invalid"), "{e}");
        let socks = Matcher::builder().all("socks5h://127.0.0.1").build();
        assert!(bind_via(Some("https://s3.example.invalid"), &socks).unwrap().addr.ip().is_loopback());
        let unresolvable = Matcher::builder().https("http://proxy.invalid:3128").build();
        let e = bind_via(Some("https://s3.example.invalid"), &unresolvable).unwrap_err();
        assert!(e.contains("cannot resolve proxy.invalid") && e.contains("the proxy for https://s3.example.invalid"), "{e}");
    }
}
