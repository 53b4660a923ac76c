//! `derp backup <path> [--force]`.

use crate::storage::backup;
use std::path::Path;

pub(super) fn backup_command(data_dir: &Path, path: &Path, force: bool) -> Result<(), String> {
    let info = backup::backup_data_dir(data_dir, path, force).map_err(|e| e.to_string())?;
    let check = backup::integrity_check(&info.path).map_err(|e| e.to_string())?;
    if check != "ok" {
        return Err(format!(
            "{} was written but fails PRAGMA integrity_check: {}",
            info.path.display(),
            check.replace('\n', "; ")
        ));
    }
    println!(
        "backed up {} to {} ({} bytes, migration {}, integrity ok)",
        backup::database_file(data_dir).display(),
        info.path.display(),
        info.bytes,
        info.version
    );
    Ok(())
}
