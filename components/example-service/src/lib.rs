//! A user's long-running service as a component: it creates an elector through the imported
//! `election` interface (composed in with wac), steps it forever on the schedule the elector
//! asks for, and says when it starts and stops doing its leader-only work.

#[cfg(target_arch = "wasm32")]
mod service {
    use s3lect_guest::env_config::config_from_vars;
    use std::time::Duration;

    wit_bindgen::generate!({
        path: "../../wit",
        world: "example-service",
        generate_all,
    });

    use s3lect::election::election::Elector;
    use s3lect::election::types as wit;

    s3lect_guest::config_to_wit!(wit);

    struct Service;

    fn serve() -> Result<(), String> {
        let cfg = config_from_vars(|k| std::env::var(k).ok())?;
        let elector = Elector::create(&config_to_wit(&cfg)).map_err(|e| format!("{}: {}", e.rule, e.message))?;
        let mut leading_term = None;
        loop {
            let out = elector.step();
            let s = &out.status;
            match (leading_term, s.is_leader) {
                (None, true) => println!("leader of term {}: starting the work", s.term),
                (Some(t), false) => println!("no longer leader of term {t}: stopping the work (leader now {:?})", s.leader_id),
                _ => {}
            }
            leading_term = s.is_leader.then_some(s.term);
            std::thread::sleep(Duration::from_millis(out.next_step_in_ms));
        }
    }

    impl exports::wasi::cli::run::Guest for Service {
        fn run() -> Result<(), ()> {
            serve().map_err(|e| eprintln!("example-service: {e}"))
        }
    }

    export!(Service);
}
