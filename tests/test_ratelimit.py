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


def test_spend_pays_while_the_reserve_holds_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=10)
    assert bucket.spend(0.0, 3, keep=5) == 0.0  # 10 -> 7
    assert bucket.spend(0.0, 2, keep=5) == 0.0  # 7 -> 5
    assert bucket.spend(0.0, 2, keep=5) == 1.0  # needs 7, has 5: 2 tokens at 2/s
    assert bucket.tokens == 5  # a refused spend takes nothing
    assert bucket.spend(1.0, 2, keep=5) == 0.0
    assert bucket.take(1.0)  # the reserve is still there for client frames


def test_spend_cuts_a_cost_the_bucket_could_never_pay() -> None:
    bucket = TokenBucket(rate=1.0, burst=10)
    assert bucket.spend(0.0, 50, keep=5) == 0.0  # cut to 5
    assert bucket.tokens == 5
    assert bucket.spend(0.0, 50, keep=5) == 5.0
