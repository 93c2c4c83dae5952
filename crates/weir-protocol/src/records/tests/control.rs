//! Transaction markers.

use crate::records::control::{ControlKey, ControlRecordType, EndTxnMarker};
use crate::records::{BatchView, RecordsError};

#[test]
fn marker_batch_round_trips() {
    for commit in [true, false] {
        let m = EndTxnMarker {
            commit,
            coordinator_epoch: 17,
        };
        let v = BatchView::parse(m.build_batch(99, 4, 1234).unwrap()).unwrap();
        assert!(v.is_control() && v.is_transactional());
        assert_eq!(
            (v.producer_id(), v.producer_epoch(), v.base_sequence()),
            (99, 4, -1)
        );
        assert_eq!(v.record_count(), 1);
        // a client may not send this
        assert!(v.validate_client_append().is_err());
        let records: Vec<_> = v.records(1024).unwrap().map(Result::unwrap).collect();
        assert_eq!(records.len(), 1);
        assert_eq!(EndTxnMarker::from_record(&records[0]).unwrap(), Some(m));
        assert_eq!(records[0].timestamp, 1234);
    }
}

#[test]
fn keys_and_values_are_checked() {
    assert_eq!(
        ControlKey::parse(&[0, 0, 0, 1]).unwrap().record_type,
        ControlRecordType::Commit
    );
    assert_eq!(
        ControlKey::parse(&[0, 0, 0, 3]).unwrap().record_type,
        ControlRecordType::Other(3)
    );
    for bad in [&[][..], &[0, 0, 0], &[0xff, 0xff, 0, 0], &[0, 0, 0, 1, 9]] {
        assert!(matches!(
            ControlKey::parse(bad),
            Err(RecordsError::InvalidControlRecord(_))
        ));
    }
    // a newer version may carry more
    assert_eq!(ControlKey::parse(&[0, 1, 0, 0, 9]).unwrap().version, 1);
    let key = ControlKey::encode(ControlRecordType::Abort);
    assert_eq!(
        EndTxnMarker::parse(&key, &[0, 0, 0, 0, 0, 5]).unwrap(),
        Some(EndTxnMarker {
            commit: false,
            coordinator_epoch: 5
        })
    );
    assert!(EndTxnMarker::parse(&key, &[0, 0, 0, 0, 0]).is_err());
    assert!(EndTxnMarker::parse(&key, &[0, 0, 0, 0, 0, 5, 1]).is_err());
    assert!(EndTxnMarker::parse(&key, &[0, 1, 0, 0, 0, 5, 1]).is_ok());
    assert_eq!(
        EndTxnMarker::parse(&ControlKey::encode(ControlRecordType::Other(2)), &[]).unwrap(),
        None
    );
}
