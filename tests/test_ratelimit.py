from beacon.ratelimit import TokenBucket


def test_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=1.0, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.take(0.5)  # one token back after half a second
    assert not bucket.take(0.5)
    assert bucket.take(100.0) and bucket.take(100.0) and not bucket.take(100.0)
