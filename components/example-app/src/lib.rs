//! A user's scheduled job as a component: each run asks s3lect (an import, composed in with
//! wac) for one election step, and does the job only while it leads — at most for the lease
//! that step reported.

#[cfg(target_arch = "wasm32")]
mod app {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "example-app",
        generate_all,
    });

    use s3lect::election::cron::step_once;

    struct App;

    impl exports::wasi::cli::run::Guest for App {
        fn run() -> Result<(), ()> {
            match step_once() {
                Ok(r) if r.status.is_leader => {
                    let lease = r.lease_remaining_ms.unwrap_or(0);
                    println!("leader of term {}: doing the scheduled work (lease {lease} ms)", r.status.term);
                    Ok(())
                }
                Ok(r) => {
                    println!("follower: {:?} leads term {}; skipping the work", r.status.leader_id, r.status.term);
                    Ok(())
                }
                Err(e) => {
                    eprintln!("example-app: election step failed, not working: {e}");
                    Err(())
                }
            }
        }
    }

    export!(App);
}
