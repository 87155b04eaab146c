//! Appending across segment rolls, reading back, and reopening.

use walkv::log::{Log, LogConfig};

fn tiny() -> LogConfig {
    LogConfig {
        max_segment_bytes: 200,
        max_index_bytes: 32 + 8 * 4,
        max_record_bytes: 1024,
    }
}

#[test]
fn appends_roll_segments_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..25)
        .map(|i| format!("record number {i}").into_bytes())
        .collect();
    {
        let mut log = Log::open(dir.path(), tiny()).unwrap();
        for p in &payloads[..10] {
            log.append(p).unwrap();
        }
        assert_eq!(log.append_batch(&payloads[10..]).unwrap(), 10..25);
        log.sync().unwrap();
        assert!(
            log.segment_count() >= 5,
            "rolled into {} segments",
            log.segment_count()
        );
        log.close().unwrap();
    }
    let log = Log::open(dir.path(), tiny()).unwrap();
    assert_eq!(log.next_offset(), 25);
    assert_eq!(log.recovery().indexes_rebuilt, 0);
    for (i, p) in payloads.iter().enumerate() {
        assert_eq!(&log.read(i as u64).unwrap(), p);
    }
    let all: Vec<_> = log.iter_from(7).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(all.len(), 18);
    assert_eq!(all[0], (7, payloads[7].clone()));
}
