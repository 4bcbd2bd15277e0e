//! One behaviour test that every backend must pass.

use hush_core::ThreadId;
use hush_core::crypto::Sealed;
use uuid::Uuid;

use crate::{
    OutboxEntry, OutboxState, ProfileMeta, Store, StoredMessage, ThreadRecord, message_key,
};

fn tid(n: u8) -> ThreadId {
    ThreadId::parse(&format!("{n:02x}000000-0000-4000-8000-0000000000{n:02x}")).expect("id")
}

fn msg(t: ThreadId, id: &str, micros: i64, iv: &str) -> StoredMessage {
    StoredMessage {
        id: id.into(),
        thread_id: t,
        ciphertext: format!("ct-{id}"),
        iv: iv.into(),
        created_at: hush_core::time::format_ws(micros),
        client_message_id: None,
    }
}

/// Panics on the first behaviour that differs from the contract.
pub fn run(s: &dyn Store) {
    // Profile.
    assert_eq!(s.profile().unwrap(), ProfileMeta::default());
    let p = ProfileMeta {
        kdf_salt: Some("salt".into()),
        identity: Some(Sealed {
            ciphertext: "c".into(),
            iv: "i".into(),
        }),
        server: Some("http://x".into()),
        prefs: crate::Prefs {
            notifications_off: false,
            notification_text_hidden: true,
            auto_lock_minutes: Some(5),
        },
        threads_after: Some("2026-01-19T10:00:00.000001Z".into()),
        blocked: vec![Uuid::from_u128(7)],
    };
    s.set_profile(&p).unwrap();
    assert_eq!(s.profile().unwrap(), p);

    // Contacts and threads.
    let peer = Uuid::new_v4();
    let sealed = Sealed {
        ciphertext: "cc".into(),
        iv: "ii".into(),
    };
    s.put_contact(peer, &sealed).unwrap();
    s.put_contact(peer, &sealed).unwrap();
    assert_eq!(s.contacts().unwrap(), vec![(peer, sealed.clone())]);
    let (a, b) = (tid(1), tid(2));
    let rec = ThreadRecord::new(a, peer);
    s.put_thread(&rec).unwrap();
    assert_eq!(s.threads().unwrap(), vec![rec.clone()]);
    // A contact removed is gone; others stay.
    let other_peer = Uuid::from_u128(9);
    s.put_contact(other_peer, &sealed).unwrap();
    s.remove_contact(other_peer).unwrap();
    s.remove_contact(Uuid::from_u128(10)).unwrap();
    assert_eq!(s.contacts().unwrap(), vec![(peer, sealed.clone())]);

    // Messages: dedupe by id, order by time then id, per thread.
    let m3 = msg(a, "m3", 30, "iv3");
    let m1 = msg(a, "m1", 10, "iv1");
    let m2b = msg(a, "m2b", 20, "iv2b");
    let m2a = msg(a, "m2a", 20, "iv2a");
    let other = msg(b, "m1", 5, "iv1");
    let rec2 = ThreadRecord {
        cursor: Some(m3.created_at.clone()),
        ..rec.clone()
    };
    let out = s
        .store_messages(
            &[
                m3.clone(),
                m1.clone(),
                m2b.clone(),
                m2a.clone(),
                other.clone(),
            ],
            Some(&rec2),
            &[],
        )
        .unwrap();
    assert_eq!(out, vec![true; 5]);
    assert_eq!(s.threads().unwrap(), vec![rec2]);
    let again = s
        .store_messages(&[m1.clone(), msg(a, "m4", 40, "iv4")], None, &[])
        .unwrap();
    assert_eq!(again, vec![false, true]);
    // A stock server's second copy of the same blob is not a new message...
    let mut copy = msg(a, "m1-copy", 45, "iv1");
    copy.ciphertext = m1.ciphertext.clone();
    // ...but the same IV with other bytes is (nothing is lost on a guess).
    let mut same_iv = msg(a, "m1-other", 46, "iv1");
    same_iv.ciphertext = "different".into();
    assert_eq!(
        s.store_messages(&[copy, same_iv], None, &[]).unwrap(),
        vec![false, true]
    );
    let all = s.messages(a, None, 100).unwrap();
    let ids: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2a", "m2b", "m3", "m4", "m1-other"]);
    assert_eq!(all[0], m1);
    let page = s.messages(a, Some(&message_key(&m2a)), 2).unwrap();
    assert_eq!(
        page.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m2b", "m3"]
    );
    let ids_of = |v: Vec<StoredMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let latest = s.messages_before(a, None, 2).unwrap();
    assert_eq!(ids_of(latest), ["m4", "m1-other"]);
    // Paging back from the oldest shown: exclusive, oldest first, to the start.
    let older = s.messages_before(a, Some(&message_key(&m3)), 2).unwrap();
    assert_eq!(ids_of(older), ["m2a", "m2b"]);
    let oldest = s.messages_before(a, Some(&message_key(&m2a)), 5).unwrap();
    assert_eq!(ids_of(oldest), ["m1"]);
    assert!(
        s.messages_before(a, Some(&message_key(&m1)), 5)
            .unwrap()
            .is_empty()
    );
    assert!(s.messages_before(a, None, 0).unwrap().is_empty());
    assert!(s.messages_before(tid(3), None, 5).unwrap().is_empty());
    assert_eq!(s.message_count(a).unwrap(), 6);
    assert_eq!(s.message_count(b).unwrap(), 1);
    assert_eq!(s.message_count(tid(3)).unwrap(), 0);
    assert!(s.has_message(a, "m2a").unwrap());
    assert!(!s.has_message(tid(3), "m2a").unwrap());
    assert_eq!(s.message_with_iv(a, "iv3").unwrap().as_deref(), Some("m3"));
    assert_eq!(s.message_with_iv(b, "iv3").unwrap(), None);

    // Outbox: seq order, atomic completion with the message.
    let e = |seq| OutboxEntry {
        seq,
        thread_id: a,
        client_message_id: format!("c{seq}"),
        sealed: Sealed {
            ciphertext: "x".into(),
            iv: format!("iv-out-{seq}"),
        },
        attempts: 0,
        state: OutboxState::Queued,
        created_ms: 1,
    };
    s.put_outbox(&e(9)).unwrap();
    s.put_outbox(&e(2)).unwrap();
    let mut failed = e(5);
    failed.state = OutboxState::Failed("thread gone".into());
    s.put_outbox(&failed).unwrap();
    assert_eq!(
        s.outbox()
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [2, 5, 9]
    );
    s.store_messages(&[msg(a, "m9", 90, "iv-out-9")], None, &[9])
        .unwrap();
    assert_eq!(
        s.outbox()
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [2, 5]
    );
    s.remove_outbox(2).unwrap();
    s.remove_outbox(77).unwrap();
    assert_eq!(s.outbox().unwrap(), vec![failed]);

    // Delivery positions: one per thread, the last write wins.
    assert_eq!(s.delivered().unwrap(), vec![]);
    let key = |m: i64, id: &str| crate::MessageKey {
        micros: m,
        id: id.into(),
    };
    s.set_delivered(&[(a, key(10, "m1")), (tid(7), key(5, "x"))])
        .unwrap();
    s.set_delivered(&[(a, key(20, "m2"))]).unwrap();
    let mut d = s.delivered().unwrap();
    d.sort();
    let mut want = vec![(a, key(20, "m2")), (tid(7), key(5, "x"))];
    want.sort();
    assert_eq!(d, want);

    // Drafts: one per thread, replaced, removed; removing none is fine.
    assert_eq!(s.drafts().unwrap(), vec![]);
    let sealed = |c: &str| Sealed {
        ciphertext: c.into(),
        iv: "iv".into(),
    };
    s.put_draft(a, Some(&sealed("one"))).unwrap();
    s.put_draft(tid(7), Some(&sealed("seven"))).unwrap();
    s.put_draft(a, Some(&sealed("two"))).unwrap();
    s.put_draft(tid(9), None).unwrap();
    let mut d = s.drafts().unwrap();
    d.sort_by_key(|(t, _)| t.to_string());
    let mut want = vec![(a, sealed("two")), (tid(7), sealed("seven"))];
    want.sort_by_key(|(t, _)| t.to_string());
    assert_eq!(d, want);
    s.put_draft(tid(7), None).unwrap();
    assert_eq!(s.drafts().unwrap(), vec![(a, sealed("two"))]);

    // Forgetting a thread takes its record, messages, indexes, draft and
    // delivery position, and nothing of another thread's.
    let request = ThreadRecord {
        metadata: Some(sealed("meta")),
        ignored: true,
        ..ThreadRecord::new(b, Uuid::from_u128(11))
    };
    s.put_thread(&request).unwrap();
    assert!(s.threads().unwrap().contains(&request), "kept whole");
    s.put_draft(b, Some(&sealed("b"))).unwrap();
    s.set_delivered(&[(b, key(5, "m1"))]).unwrap();
    s.forget_thread(a).unwrap();
    assert_eq!(s.threads().unwrap(), vec![request]);
    assert_eq!(s.message_count(a).unwrap(), 0);
    assert!(s.messages(a, None, 10).unwrap().is_empty());
    assert!(!s.has_message(a, "m2a").unwrap());
    assert_eq!(s.message_with_iv(a, "iv3").unwrap(), None);
    assert_eq!(s.drafts().unwrap(), vec![(b, sealed("b"))]);
    let mut d = s.delivered().unwrap();
    d.sort();
    assert_eq!(d, vec![(b, key(5, "m1")), (tid(7), key(5, "x"))]);
    assert_eq!(s.message_count(b).unwrap(), 1);
    assert!(s.has_message(b, "m1").unwrap());
    // A message forgotten can be stored again (fetched after re-adding).
    assert_eq!(
        s.store_messages(std::slice::from_ref(&m1), None, &[])
            .unwrap(),
        vec![true]
    );
    s.forget_thread(tid(42)).unwrap();
}
