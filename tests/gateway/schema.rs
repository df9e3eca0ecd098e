//! `schema.graphql` is the contract with clients: the code must serve exactly it.

#[test]
fn the_committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).expect("schema.graphql is committed");
    let served = datasync_gateway::graphql::sdl();
    assert!(
        committed == served,
        "schema.graphql differs from the schema the code serves. If the change is intended, run\n  \
         cargo run -- print-schema > schema.graphql\nand explain any breaking change in the commit."
    );
}
