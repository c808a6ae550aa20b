//! SARIF output: the official 2.1.0 schema, and source locations from `code.*`.

use super::*;

#[test]
fn sarif_validates_against_the_official_schema_and_points_at_source_lines() {
    let dir = TempDir::new("analyze-sarif");
    let input = all_fixtures_ndjson(&dir.0);
    let run = analyze(&dir.0, &["--input", "all.ndjson", "--format", "sarif"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_valid_sarif(&dir.0, &run.stdout);
    let sarif = run.json();
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "one rule per kind, in order");
    for kind in ["n_plus_one_sql", "io_waste", "slow_http", "chatty_service"] {
        assert!(ids.contains(&kind), "{ids:?}");
    }
    let results = run0["results"].as_array().unwrap();
    let json = analyze(
        &dir.0,
        &["--input", input.to_str().unwrap(), "--format", "json"],
    )
    .json();
    assert_eq!(results.len(), json["findings"].as_array().unwrap().len());
    for r in results {
        let rule = &rules[r["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], r["ruleId"]);
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("every result has a file: {r}"));
        assert!(!uri.is_empty());
        assert!(r["partialFingerprints"]["perfSentinelSignature/v1"].is_string());
    }
    // None of the fixtures' findings has a source location: each points at
    // the trace file, as given on the command line.
    for r in results {
        assert_eq!(
            r["locations"][0]["physicalLocation"],
            json!({"artifactLocation": {"uri": "all.ndjson"}, "region": {"startLine": 1}}),
            "{r}"
        );
    }
    let efcore = results
        .iter()
        .find(|r| r["ruleId"] == "n_plus_one_sql" && r["level"] == "error")
        .expect("EF Core's critical N+1 is an error");
    assert!(
        efcore["message"]["text"]
            .as_str()
            .unwrap()
            .ends_with("(seen once)")
    );

    // Spans that name their source: the N+1 points at the file and line.
    let input = write(
        &dir.0,
        "n1.json",
        n_plus_one(
            "orders",
            "/orders/{id}",
            "SELECT * FROM items WHERE id = ",
            true,
        )
        .to_string()
        .as_bytes(),
    );
    let run = analyze(
        &dir.0,
        &["--input", input.to_str().unwrap(), "--format", "sarif"],
    );
    assert_valid_sarif(&dir.0, &run.stdout);
    let sarif = run.json();
    let result = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "n_plus_one_sql")
        .cloned()
        .unwrap();
    assert_eq!(
        result["locations"][0],
        json!({
            "physicalLocation": {
                "artifactLocation": {"uri": "src/orders/item%20repo.py"},
                "region": {"startLine": 57}
            },
            "logicalLocations": [{"fullyQualifiedName": "orders.repo.ItemRepo.load", "kind": "function"}]
        })
    );
}
