//! Captures every `tracing` event and span at TRACE level, as text and as
//! structured spans, for the secrets and observability tests.
//!
//! `log` records are bridged in too. The subscriber is the thread's default, so use it from a
//! `#[tokio::test(flavor = "current_thread")]` test: every task (the
//! manager's refreshes, the mocks) then runs on the capturing thread.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::Subscriber;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span as captured: its name and every field it was given or recorded.
#[derive(Debug, Clone, Default)]
pub struct CapturedSpan {
    /// The span's name, e.g. `oauth2_adapters.token_request`.
    pub name: String,
    /// Its fields, formatted with `Debug` (strings without quotes).
    pub fields: BTreeMap<String, String>,
}

impl CapturedSpan {
    /// A field's value, if it was set.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Captured {
    text: Vec<u8>,
    spans: Vec<CapturedSpan>,
}

/// The capture; the subscriber is removed when it is dropped.
pub struct TraceCapture {
    captured: Arc<Mutex<Captured>>,
    _guard: DefaultGuard,
}

impl TraceCapture {
    /// Starts capturing everything at TRACE level on this thread, including
    /// `log` records (from `reqwest` and others), bridged to `tracing`.
    pub fn start() -> Self {
        // Once per process; later calls find it installed.
        let _ = tracing_log::LogTracer::init();
        let captured = Arc::new(Mutex::new(Captured::default()));
        let writer = {
            let captured = Arc::clone(&captured);
            move || TextWriter(Arc::clone(&captured))
        };
        let text = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer)
            .with_span_events(FmtSpan::FULL)
            .with_filter(tracing_subscriber::filter::LevelFilter::TRACE);
        let spans = SpanRecorder(Arc::clone(&captured));
        let subscriber = tracing_subscriber::registry().with(text).with(spans);
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            captured,
            _guard: guard,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.captured.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().text).into_owned()
    }

    /// Every span named `name`, in creation order.
    pub fn spans(&self, name: &str) -> Vec<CapturedSpan> {
        self.lock()
            .spans
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }

    /// Asserts that none of `secrets` appears in the text or in any span
    /// field; names the secret's label on failure, never the secret.
    pub fn assert_free_of(&self, secrets: &[(&str, &str)]) {
        let text = self.text();
        assert!(!text.is_empty(), "nothing was captured");
        let spans = self.lock().spans.clone();
        for (label, secret) in secrets {
            assert!(secret.len() >= 4, "{label} is too short to search for");
            assert!(
                !text.contains(secret),
                "the {label} appears in the tracing output"
            );
            for span in &spans {
                assert!(
                    !span.fields.values().any(|v| v.contains(secret)),
                    "the {label} appears in a field of span {}",
                    span.name
                );
            }
        }
    }
}

struct TextWriter(Arc<Mutex<Captured>>);

impl io::Write for TextWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .text
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Records spans with their fields; a span's index in `Captured::spans`
/// is kept in its extensions so later `record` calls find it.
struct SpanRecorder(Arc<Mutex<Captured>>);

struct SpanIndex(usize);

impl<S> Layer<S> for SpanRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = CapturedSpan {
            name: attrs.metadata().name().to_owned(),
            fields: BTreeMap::new(),
        };
        attrs.record(&mut FieldVisitor(&mut span.fields));
        let index = {
            let mut captured = self.0.lock().unwrap_or_else(|p| p.into_inner());
            captured.spans.push(span);
            captured.spans.len() - 1
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanIndex(index));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(index) = span.extensions().get::<SpanIndex>().map(|i| i.0) else {
            return;
        };
        let mut captured = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(span) = captured.spans.get_mut(index) {
            values.record(&mut FieldVisitor(&mut span.fields));
        }
    }
}

struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}
