//! The `peer-http` world: the leader-health probe over `wasi:http`, and hooks that report
//! transitions on stderr (a composed app learns of leadership from `step`'s status instead).

/// The probe's scheme: https unless S3LECT_PEER_SCHEME says http.
pub fn scheme_from(var: Option<String>) -> Result<&'static str, String> {
    match var.as_deref().map(str::trim) {
        None | Some("") | Some("https") => Ok("https"),
        Some("http") => Ok("http"),
        Some(other) => Err(format!("S3LECT_PEER_SCHEME={other:?} must be https or http")),
    }
}

#[cfg(target_arch = "wasm32")]
mod component {
    use s3lect_wasi_http::{Exchange, HttpError, send};

    wit_bindgen::generate!({
        path: "../../wit",
        world: "peer-http",
        generate_all,
    });

    use exports::s3lect::election::{hooks, peer};

    struct Component;

    impl peer::Guest for Component {
        fn probe(addr: String, path: String, timeout_ms: u64, pin: Option<String>) -> Result<peer::ProbeReply, String> {
            // wasi:http leaves certificates to the host: a pinned leader cannot be verified
            // here, so it is not probed (the election reads S3 instead).
            if pin.is_some() {
                return Err(format!("peer {addr} publishes a certificate pin, which wasi:http cannot check"));
            }
            let scheme = super::scheme_from(std::env::var("S3LECT_PEER_SCHEME").ok())?;
            let exchange = Exchange { method: "GET", scheme, authority: &addr, path: &path, headers: &[], body: &[] };
            match send(&exchange, timeout_ms) {
                Ok(a) if a.status == 200 => Ok(peer::ProbeReply::Leader(a.body)),
                Ok(a) if a.status == 404 => Ok(peer::ProbeReply::NotLeader),
                Ok(a) => Err(format!("peer {addr} answered HTTP {} to {path}", a.status)),
                Err(HttpError::Unavailable(m) | HttpError::Invalid(m)) => Err(format!("probing peer {addr}: {m}")),
            }
        }
    }

    impl hooks::Guest for Component {
        fn on_acquire(term: u64, leader_id: String) -> Result<(), String> {
            eprintln!("s3lect: {leader_id} acquired leadership, term {term}");
            Ok(())
        }
        fn on_lose(term: u64, leader_id: String) -> Result<(), String> {
            eprintln!("s3lect: {leader_id} lost leadership, term {term}");
            Ok(())
        }
    }

    export!(Component);
}

#[cfg(test)]
mod tests {
    use super::scheme_from;

    #[test]
    fn scheme_is_https_unless_http_is_asked_for() {
        assert_eq!(scheme_from(None), Ok("https"));
        assert_eq!(scheme_from(Some("http".into())), Ok("http"));
        assert!(scheme_from(Some("ftp".into())).unwrap_err().contains("S3LECT_PEER_SCHEME"));
    }
}
