use super::*;

const S: i64 = 1_000_000_000;

fn form() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
    headers
}

fn url(query: &str) -> Params {
    Params::from_url(Some(query))
}

/// The message a parameter error answers with (what both APIs put in their bodies).
fn reason<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn form_body_values_come_before_url_values() {
    let p = Params::parse(Some("query=url&match[]=a"), &form(), b"query=body&match%5B%5D=b");
    assert_eq!(p.get("query"), Some("body"));
    assert_eq!(p.all("match[]").collect::<Vec<_>>(), vec!["b", "a"]);
    // Without a form content type the body is not parameters.
    let p = Params::parse(Some("query=url"), &HeaderMap::new(), b"query=body");
    assert_eq!(p.get("query"), Some("url"));
    let mut json = HeaderMap::new();
    json.insert(CONTENT_TYPE, "application/json".parse().unwrap());
    assert_eq!(Params::parse(None, &json, b"query=body").get("query"), None);
    // A charset parameter (and stray leading space) still marks a form.
    let mut charset = HeaderMap::new();
    charset.insert(
        CONTENT_TYPE,
        " application/x-www-form-urlencoded; charset=utf-8".parse().unwrap(),
    );
    assert_eq!(Params::parse(None, &charset, b"query=body").get("query"), Some("body"));
}

#[test]
fn repeated_and_empty_keys() {
    let p = url("match[]=a&match[]=b&match%5B%5D=c&query=&x=1&x=2");
    assert_eq!(p.all("match[]").collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(p.get("x"), Some("1"), "the first value wins, as r.FormValue");
    assert_eq!(p.get("query"), Some(""));
    assert_eq!(p.given("query"), None, "an empty value is not given");
    assert_eq!(p.text("absent"), "");
    assert_eq!(p.all("absent").count(), 0);
}

#[test]
fn prometheus_times_are_unix_seconds_or_rfc3339_in_ms() {
    assert_eq!(prometheus_time("1435781451.781"), Ok(1_435_781_451_781));
    assert_eq!(prometheus_time("1435781451"), Ok(1_435_781_451_000));
    assert_eq!(prometheus_time("-1.5"), Ok(-1_500));
    assert_eq!(prometheus_time("2015-07-01T20:10:51.781Z"), Ok(1_435_781_451_781));
    assert_eq!(prometheus_time("2015-07-01T22:10:51+02:00"), Ok(1_435_781_451_000));
    assert_eq!(prometheus_time(MIN_TIME_TEXT), Ok(MIN_TIME_MS));
    assert_eq!(prometheus_time(MAX_TIME_TEXT), Ok(MAX_TIME_MS));
    // Nanosecond integers are Loki's, not Prometheus's: read as (far-future) seconds.
    assert!(prometheus_time("1700000000000000000").is_err());
    assert_eq!(
        prometheus_time("yesterday").unwrap_err(),
        "cannot parse \"yesterday\" to a valid timestamp"
    );
}

#[test]
fn prometheus_durations_are_seconds_or_model_durations_in_ms() {
    assert_eq!(prometheus_duration("15"), Ok(15_000));
    assert_eq!(prometheus_duration("0.5"), Ok(500));
    assert_eq!(prometheus_duration("15s"), Ok(15_000));
    assert_eq!(prometheus_duration("1m30s"), Ok(90_000));
    assert_eq!(prometheus_duration("1h"), Ok(3_600_000));
    assert_eq!(prometheus_duration("5ms"), Ok(5));
    assert_eq!(prometheus_duration("1d2h"), Ok(26 * 3_600_000));
    assert_eq!(prometheus_duration("0s"), Ok(0));
    // model.ParseDuration: units in decreasing order, whole numbers only.
    assert!(prometheus_duration("1s1h").is_err());
    assert!(prometheus_duration("1.5s").is_err());
    assert!(prometheus_duration("1x").is_err());
    assert_eq!(
        prometheus_duration("soon").unwrap_err(),
        "cannot parse \"soon\" to a valid duration"
    );
    assert_eq!(
        prometheus_duration("1e300").unwrap_err(),
        "cannot parse \"1e300\" to a valid duration. It overflows int64"
    );
    assert!(prometheus_duration("").is_err());
}

#[test]
fn loki_times_are_seconds_nanoseconds_or_rfc3339_in_ns() {
    assert_eq!(loki_time("1700000000"), Ok(1_700_000_000 * S));
    assert_eq!(loki_time("1700000000000000000"), Ok(1_700_000_000 * S));
    assert_eq!(loki_time("1.5"), Ok(1_500_000_000));
    assert_eq!(loki_time(".25"), Ok(250_000_000));
    assert_eq!(loki_time("1.0000000019"), Ok(S + 1), "digits past nanoseconds are cut");
    assert_eq!(loki_time("2023-11-14T22:13:20.5Z"), Ok(1_700_000_000 * S + 500_000_000));
    assert_eq!(
        loki_time("soon").unwrap_err(),
        "cannot parse \"soon\" to a valid timestamp"
    );
    assert!(loki_time("1.5x").is_err());
}

/// Found by the `params` fuzz target (query/fuzz): a duration is a Go `time.Duration`, so
/// Prometheus refuses one over ~292 years; `1000002w3d` was read as 604,801,468,800,000 ms.
#[test]
fn prometheus_durations_fit_a_go_duration() {
    assert_eq!(prometheus_duration("292y"), Ok(292 * 365 * 86_400_000));
    assert_eq!(
        prometheus_duration("1000002w3d").unwrap_err(),
        "cannot parse \"1000002w3d\" to a valid duration"
    );
    assert!(prometheus_duration("293y").is_err());
}

/// Found by the `params` fuzz target (query/fuzz): a lone point read as time 0, and anything
/// after the ninth fraction digit was never looked at.
#[test]
fn loki_times_with_a_point_are_decimal_numbers() {
    assert_eq!(loki_time("."), Err("cannot parse \".\" to a valid timestamp".into()));
    assert!(loki_time("1.1234567890x").is_err());
    assert!(loki_time("1.123456789 ").is_err());
    assert_eq!(loki_time("1."), Ok(S));
    assert_eq!(loki_time("1.1234567890"), Ok(S + 123_456_789));
}

#[test]
fn loki_durations_are_seconds_or_go_durations_in_ns() {
    assert_eq!(loki_duration("15"), Ok(15 * S));
    assert_eq!(loki_duration("0.5"), Ok(S / 2));
    assert_eq!(loki_duration("1m30s"), Ok(90 * S));
    // Go's time.ParseDuration takes fractions and any unit order, unlike Prometheus's.
    assert_eq!(loki_duration("1.5s"), Ok(3 * S / 2));
    assert_eq!(loki_duration("250ms"), Ok(S / 4));
    assert_eq!(
        loki_duration("fast").unwrap_err(),
        "cannot parse \"fast\" to a valid duration"
    );
    assert!(loki_duration("1e12").is_err(), "beyond i64 nanoseconds");
}

#[test]
fn prometheus_accessors_name_the_parameter_as_prometheus_does() {
    let p = url("time=abc&start=abc&limit=-1&step=x&timeout=2s&n=1.5");
    assert_eq!(
        reason(p.prom_time_or("time", 0)),
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"abc\" to a valid timestamp"
    );
    assert_eq!(
        reason(p.prom_time("start")),
        "invalid parameter \"start\": cannot parse \"abc\" to a valid timestamp"
    );
    assert_eq!(
        reason(p.prom_time("end")),
        "invalid parameter \"end\": cannot parse \"\" to a valid timestamp",
        "a required time that is absent is empty"
    );
    assert_eq!(
        reason(p.prom_duration("step")),
        "invalid parameter \"step\": cannot parse \"x\" to a valid duration"
    );
    assert_eq!(
        reason(p.prom_limit()),
        "invalid parameter \"limit\": limit must be non-negative"
    );
    assert_eq!(
        reason(url("limit=x").prom_limit()),
        "invalid parameter \"limit\": strconv.Atoi: parsing \"x\": invalid syntax"
    );
    assert_eq!(reason(p.prom_signed("n")), "n must be a number");
    assert_eq!(p.prom_timeout().unwrap(), Some(Duration::from_secs(2)));

    let empty = url("start=&limit=");
    assert_eq!(empty.prom_time_or("time", 42).unwrap(), 42);
    assert_eq!(empty.prom_limit().unwrap(), 0);
    assert_eq!(empty.prom_signed("limit").unwrap(), -1);
    assert_eq!(empty.prom_timeout().unwrap(), None);
    assert_eq!(
        empty.prom_time_range().unwrap(),
        TimeRange::new(MIN_TIME_MS, MAX_TIME_MS)
    );
    assert_eq!(
        url("start=1&end=2.5").prom_time_range().unwrap(),
        TimeRange::new(1_000, 2_500)
    );
}

#[test]
fn prometheus_matchers_expand_every_match_parameter() {
    let p = Params(vec![
        ("match[]".into(), "up".into()),
        ("match[]".into(), r#"{job="a" or job="b"}"#.into()),
    ]);
    assert_eq!(p.prom_matchers().unwrap().len(), 3, "one set, then two alternatives");
    assert!(url("").prom_matchers().unwrap().is_empty());
    let err = url("match[]=up%7B").prom_matchers().unwrap_err();
    assert_eq!(err.kind(), crate::error::ErrorKind::BadData);
}

#[test]
fn loki_accessors_apply_lokis_defaults_and_wording() {
    assert_eq!(url("").loki_limit().unwrap(), LOKI_DEFAULT_LIMIT);
    assert_eq!(url("limit=7").loki_limit().unwrap(), 7);
    for bad in ["0", "-1", "x"] {
        assert_eq!(
            reason(url(&format!("limit={bad}")).loki_limit()),
            "invalid parameter \"limit\": limit must be a positive value"
        );
    }
    assert_eq!(url("").loki_direction().unwrap(), Direction::Backward);
    assert_eq!(url("direction=FORWARD").loki_direction().unwrap(), Direction::Forward);
    assert_eq!(
        reason(url("direction=Sideways").loki_direction()),
        "invalid parameter \"direction\": invalid direction \"sideways\""
    );

    assert_eq!(url("start=1&end=2").loki_range().unwrap(), (S, 2 * S));
    // `start` defaults to `end - since`, `since` to an hour.
    assert_eq!(url("end=7200&since=1m").loki_range().unwrap(), (7140 * S, 7200 * S));
    assert_eq!(url("end=7200").loki_range().unwrap(), (3600 * S, 7200 * S));
    let (start, end) = url("").loki_range().unwrap();
    assert_eq!(end - start, LOKI_DEFAULT_SINCE_NS, "end defaults to now");
    assert_eq!(
        reason(url("start=2&end=1").loki_range()),
        "end timestamp must not be before or equal to start time"
    );
    assert_eq!(
        reason(url("start=yesterday").loki_range()),
        "invalid parameter \"start\": cannot parse \"yesterday\" to a valid timestamp"
    );
    assert_eq!(
        reason(url("since=soon").loki_range()),
        "invalid parameter \"since\": cannot parse \"soon\" to a valid duration"
    );
    assert_eq!(url("step=").loki_duration("step").unwrap(), None);
}

#[test]
fn loki_tail_delay_is_bounded_whole_seconds() {
    assert_eq!(url("").loki_delay_for(5).unwrap(), 0);
    assert_eq!(url("delay_for=5").loki_delay_for(5).unwrap(), 5 * S);
    for bad in ["6", "-1", "1.5"] {
        assert_eq!(
            reason(url(&format!("delay_for={bad}")).loki_delay_for(5)),
            "invalid parameter \"delay_for\": delay_for must be an integer from 0 to 5"
        );
    }
}

/// The Logs Drilldown endpoints' parameters, as Loki's `loghttp` reads them (`volumeLimit`,
/// `targetLabels`, `volumeAggregateBy`, `lineLimit`, `detectedFieldsLimit`, `step`).
#[test]
fn loki_drilldown_parameters_follow_loghttp() {
    assert_eq!(url("").loki_volume_limit().unwrap(), 100);
    assert_eq!(url("limit=0").loki_volume_limit().unwrap(), 100, "0 is the default");
    assert_eq!(url("limit=5000").loki_volume_limit().unwrap(), 5000);
    assert_eq!(
        reason(url("limit=-1").loki_volume_limit()),
        "invalid parameter \"limit\": limit must be a positive value"
    );
    assert!(reason(url("limit=x").loki_volume_limit()).contains("invalid syntax"));
    assert_eq!(url("targetLabels=a,b").loki_target_labels(), ["a", "b"]);
    assert!(url("targetLabels=").loki_target_labels().is_empty());
    assert_eq!(url("").loki_aggregate_by().unwrap(), VolumeBy::Series);
    assert_eq!(url("aggregateBy=labels").loki_aggregate_by().unwrap(), VolumeBy::Labels);
    assert!(reason(url("aggregateBy=pods").loki_aggregate_by()).contains("invalid aggregation option"));
    assert_eq!(url("").loki_line_limit().unwrap(), 100);
    assert!(url("line_limit=0").loki_line_limit().is_err());
    assert_eq!(url("").loki_fields_limit().unwrap(), 1000);
    assert_eq!(url("field_limit=7").loki_fields_limit().unwrap(), 7, "the older name");
    assert_eq!(url("limit=3&field_limit=7").loki_fields_limit().unwrap(), 3);
    assert_eq!(url("").loki_step(0, 1000 * S).unwrap(), 4 * S, "a 250th of the range");
    assert_eq!(url("").loki_step(0, 10 * S).unwrap(), S, "at least a second");
    assert_eq!(url("step=30s").loki_step(0, 1000 * S).unwrap(), 30 * S);
    assert!(reason(url("step=0").loki_step(0, S)).contains("zero or negative"));
    assert!(reason(url("step=1ms").loki_step(0, 3600 * S)).contains("11,000 points"));
}

/// Tempo's and Jaeger's parameters: times in whole seconds (Tempo) or microseconds (Jaeger), a
/// default window back from `end`, Go durations, and a limit whose 0 means the default.
#[test]
fn trace_parameters_read_both_units_and_defaults() {
    let (start, end) = url("start=100&end=200").trace_range(S, 3600 * S).unwrap();
    assert_eq!((start, end), (100 * S, 201 * S), "end's whole second is included");
    let (start, end) = url("end=200").trace_range(1_000, 3600 * S).unwrap();
    assert_eq!(
        (start, end),
        (200_000 - 3600 * S, 201_000),
        "microseconds, an hour back"
    );
    assert!(reason(url("start=200&end=100").trace_range(S, S)).contains("before start"));
    assert!(reason(url("start=soon").trace_range(S, S)).contains("invalid parameter \"start\""));
    assert_eq!(
        url("minDuration=250ms").trace_duration("minDuration").unwrap(),
        Some(250_000_000)
    );
    assert_eq!(
        url("minDuration=1m30s").trace_duration("minDuration").unwrap(),
        Some(90 * S)
    );
    assert_eq!(url("").trace_duration("minDuration").unwrap(), None);
    assert!(reason(url("minDuration=fast").trace_duration("minDuration")).contains("not a duration"));
    assert_eq!(url("").trace_limit(20).unwrap(), 20);
    assert_eq!(url("limit=0").trace_limit(20).unwrap(), 20);
    assert_eq!(url("limit=5").trace_limit(20).unwrap(), 5);
    assert!(url("limit=-5").trace_limit(20).is_err());
}
