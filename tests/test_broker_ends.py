"""The end-of-partition rule (monitor.broker.at_end): only a fetched high watermark can say
"at the end"; the listed end (ListOffsets) can only hold it back."""

from monitor.broker import at_end


def test_unfetched_partition_is_never_at_end_even_if_listed_empty() -> None:
    assert not at_end(0, 0, None)
    assert not at_end(500, 3, None)


def test_fetched_highwater_decides_when_the_listing_under_reports() -> None:
    assert not at_end(3, 3, 7)  # the embedded broker listed 3 for 7 records
    assert at_end(7, 3, 7)


def test_a_fresher_listed_end_holds_the_answer_back() -> None:
    assert not at_end(7, 9, 7)  # records arrived after the last fetch
    assert at_end(9, 9, 7)


def test_an_empty_partition_is_at_end_once_fetched() -> None:
    assert at_end(0, 0, 0)
