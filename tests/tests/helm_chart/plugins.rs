//! Plugin delivery: init containers copy `.so` files out of plugin images
//! into an emptyDir at the plugins path (or an existing volume is mounted
//! there), and `[plugins] paths` names that directory. The rendered copy
//! command is run for real, and the daemon loads what it copied.

use std::process::Command;

use super::common::{TempDir, binary, plugin_library};
use super::render::{Values, at, named, render, seq_at, str_at};
use super::tools::text;

fn fragment(r: &super::render::Rendered) -> toml::Table {
    r.config_files()[".perf-sentinel.d/00-helm-chart.toml"]
        .parse()
        .unwrap()
}

#[test]
fn plugin_images_are_copied_by_init_containers_into_the_plugins_directory() {
    let r = render(&Values::new().yaml(
        "plugins:\n  images:\n    - name: acme-rules\n      image: ghcr.io/acme/rules:1.2.0\n      files: [/plugins/libacme_rules.so, /plugins/libacme_extra.so]\n",
    ));
    let pod = r.pod_spec();
    let inits = seq_at(pod, &["initContainers"]);
    assert_eq!(inits.len(), 1);
    let init = &inits[0];
    assert_eq!(str_at(init, &["name"]), "plugin-acme-rules");
    assert_eq!(str_at(init, &["image"]), "ghcr.io/acme/rules:1.2.0");
    let command: Vec<&str> = seq_at(init, &["command"])
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        command,
        [
            "cp",
            "-v",
            "/plugins/libacme_rules.so",
            "/plugins/libacme_extra.so",
            "/opt/perf-sentinel/plugins/"
        ]
    );
    // The init container runs as locked down as the daemon.
    assert_eq!(
        at(init, &["securityContext", "readOnlyRootFilesystem"]).as_bool(),
        Some(true)
    );
    let init_mount = named(seq_at(init, &["volumeMounts"]), "plugins");
    assert_eq!(
        str_at(init_mount, &["mountPath"]),
        "/opt/perf-sentinel/plugins"
    );
    let mount = named(seq_at(r.container(), &["volumeMounts"]), "plugins");
    assert_eq!(str_at(mount, &["mountPath"]), "/opt/perf-sentinel/plugins");
    assert_eq!(at(mount, &["readOnly"]).as_bool(), Some(true));
    let volume = named(seq_at(pod, &["volumes"]), "plugins");
    assert!(at(volume, &["emptyDir"]).is_mapping());
    let paths = fragment(&r)["plugins"]["paths"].clone();
    assert_eq!(
        paths,
        toml::Value::Array(vec!["/opt/perf-sentinel/plugins".into()])
    );

    // Optional: the directory goes to `optional` instead.
    let r = render(&Values::new().yaml(
        "plugins:\n  optional: true\n  images:\n    - name: acme\n      image: acme/rules:1\n      files: [/plugins/libacme.so]\n",
    ));
    let plugins = fragment(&r)["plugins"].clone();
    assert!(plugins.get("paths").is_none(), "{plugins}");
    assert_eq!(
        plugins["optional"][0].as_str(),
        Some("/opt/perf-sentinel/plugins")
    );

    // No plugins: no init container, no plugin volume, no [plugins].
    let r = render(&Values::new());
    assert!(at(r.pod_spec(), &["initContainers"]).is_null());
    assert!(fragment(&r).get("plugins").is_none());
}

#[test]
fn an_existing_volume_delivers_plugins_without_init_containers() {
    let r = render(&Values::new().yaml(
        "plugins:\n  existingVolume:\n    persistentVolumeClaim:\n      claimName: team-plugins\n      readOnly: true\n",
    ));
    assert!(at(r.pod_spec(), &["initContainers"]).is_null());
    let volume = named(seq_at(r.pod_spec(), &["volumes"]), "plugins");
    assert_eq!(
        str_at(volume, &["persistentVolumeClaim", "claimName"]),
        "team-plugins"
    );
    named(seq_at(r.container(), &["volumeMounts"]), "plugins");
    assert_eq!(
        fragment(&r)["plugins"]["paths"][0].as_str(),
        Some("/opt/perf-sentinel/plugins")
    );
}

#[test]
fn the_rendered_copy_command_delivers_a_plugin_the_daemon_loads() {
    // The image's file is the workspace's real plugin library; the init
    // container's command, as rendered, copies it into the plugins
    // directory; the daemon's configuration, as rendered, loads it.
    let dir = TempDir::new("helm-plugin-copy");
    let lib = plugin_library("perf-sentinel-plugin-select-star");
    let r = render(&Values::new().yaml(&format!(
        "config:\n  mountPath: {0}/etc\nacks:\n  dataDir: {0}/data\nplugins:\n  mountPath: {0}/plugins\n  images:\n    - name: select-star\n      image: ghcr.io/example/select-star:0.1.0\n      files: [{1}]\n",
        dir.0.display(),
        lib.display()
    )));
    // The emptyDir exists before the init containers run.
    std::fs::create_dir_all(dir.0.join("plugins")).unwrap();
    let init = &seq_at(r.pod_spec(), &["initContainers"])[0];
    let command: Vec<String> = seq_at(init, &["command"])
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let out = Command::new(&command[0])
        .args(&command[1..])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        dir.0
            .join("plugins")
            .join(lib.file_name().unwrap())
            .exists()
    );

    r.lay_out_config();
    let args = r.args();
    let out = Command::new(binary())
        .args(["detectors", "--config", &args[2]])
        .current_dir(str_at(r.container(), &["workingDir"]))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.contains("select_star_without_limit"))
        .unwrap_or_else(|| panic!("the plugin's detector is not listed:\n{stdout}"));
    // ID, ENABLED, DEFAULT, ORIGIN: enabled, from the plugin.
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[1], "yes", "{line}");
    assert_eq!(columns[3], "perf-sentinel-plugin-select-star", "{line}");
}
