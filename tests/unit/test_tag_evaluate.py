"""`newsfeed evaluate-tags`: reading labels, scoring per topic, explaining misses; and taxonomy reloading."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.cli import main
from pipeline.tag.evaluate import LabelledArticle, LabelsError, as_json, evaluate, read_labels, render
from pipeline.tag.reload import TaxonomyReloader
from pipeline.tag.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy, TaxonomyError, load_taxonomy

US_RUSSIA = LabelledArticle(
    "a1",
    "Putin and Trump discuss arms control",
    "Russian President Vladimir Putin and U.S. President Donald Trump spoke by phone on Sunday.\n"
    "The Kremlin said the two leaders agreed that Moscow and Washington should extend New START.",
    frozenset({"us-russia"}),
)
INDIA_MISSED = LabelledArticle(
    "a2",
    "Parade rehearsals begin in the capital",
    "Rehearsals for the Republic Day parade began on Monday with marching contingents on Rajpath.",
    frozenset({"india-defence"}),
)
NAVALNY = LabelledArticle(
    "a3",
    "Navalny detained at Moscow rally",
    "Police in Moscow detained opposition leader Alexei Navalny at an unauthorised rally on Saturday.",
    frozenset(),
)
# Labelled as not us-russia, but the tagger will call it us-russia: a false positive.
ARGUABLE = LabelledArticle(
    "a4",
    "Lavrov and Pompeo meet in Washington",
    "Russian Foreign Minister Sergei Lavrov met U.S. Secretary of State Mike Pompeo in Washington.\n"
    "Lavrov said Moscow was ready to work with the United States on strategic stability.",
    frozenset(),
)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(DEFAULT_TAXONOMY_PATH)


def _write(path: Path, records: list[object]) -> Path:
    path.write_bytes(b"\n".join(orjson.dumps(record) for record in records) + b"\n")
    return path


def _record(article: LabelledArticle) -> dict[str, object]:
    return {"id": article.id, "title": article.title, "text": article.text, "topics": sorted(article.topics)}


class TestReadLabels:
    def test_reads_ids_and_topic_objects(self, tmp_path: Path) -> None:
        path = _write(
            tmp_path / "labels.jsonl",
            [
                _record(US_RUSSIA),
                {"title": "t", "text": "b", "topics": [{"id": "iraq-strikes", "score": 2.0}]},
            ],
        )
        articles = read_labels([path])
        assert [article.topics for article in articles] == [
            frozenset({"us-russia"}),
            frozenset({"iraq-strikes"}),
        ]
        assert articles[1].id == f"{path}:2", "an article without an id is named by its line"

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (b'{"title": "t", "text": "b", "topics": [', "not JSON"),
            (b'["a list"]', "expected a JSON object"),
            (b'{"title": 7, "text": "b", "topics": []}', "'title' must be a string"),
            (b'{"title": "t", "text": "b"}', "'topics' must be a list"),
            (b'{"title": "t", "text": "b", "topics": [3]}', "topic ids or objects"),
        ],
    )
    def test_bad_lines_are_reported_with_file_and_line(
        self, tmp_path: Path, line: bytes, message: str
    ) -> None:
        path = tmp_path / "labels.jsonl"
        path.write_bytes(orjson.dumps(_record(US_RUSSIA)) + b"\n\n" + line + b"\n")
        with pytest.raises(LabelsError, match=message) as raised:
            read_labels([path])
        assert f"{path}:3" in str(raised.value)

    def test_duplicate_ids_and_empty_files_are_errors(self, tmp_path: Path) -> None:
        twice = _write(tmp_path / "twice.jsonl", [_record(US_RUSSIA), _record(US_RUSSIA)])
        with pytest.raises(LabelsError, match="more than once"):
            read_labels([twice])
        empty = tmp_path / "empty.jsonl"
        empty.write_text("\n")
        with pytest.raises(LabelsError, match="no labelled articles"):
            read_labels([empty])
        with pytest.raises(LabelsError, match="cannot read"):
            read_labels([tmp_path / "missing.jsonl"])


class TestEvaluate:
    def test_counts_and_rates_per_topic(self, taxonomy: Taxonomy) -> None:
        evaluation = evaluate([US_RUSSIA, INDIA_MISSED, NAVALNY, ARGUABLE], taxonomy)
        reports = {report.id: report for report in evaluation.topics}
        assert evaluation.articles == 4
        us_russia = reports["us-russia"]
        assert (us_russia.true_positives, us_russia.false_positives, us_russia.false_negatives) == (1, 1, 0)
        assert us_russia.precision == 0.5
        assert us_russia.recall == 1.0
        assert us_russia.f1 == pytest.approx(2 / 3)
        india = reports["india-defence"]
        assert (india.true_positives, india.false_negatives, india.recall, india.precision) == (
            0,
            1,
            0.0,
            1.0,
        )
        micro = evaluation.micro()
        assert (micro.true_positives, micro.false_positives, micro.false_negatives) == (1, 1, 1)
        assert not evaluation.meets(0.95, 0.9)
        assert evaluate([US_RUSSIA, NAVALNY], taxonomy).meets(0.95, 0.9)

    def test_misses_carry_their_evidence(self, taxonomy: Taxonomy) -> None:
        evaluation = evaluate([US_RUSSIA, INDIA_MISSED, ARGUABLE], taxonomy)
        by_kind = {(miss.kind, miss.topic): miss for miss in evaluation.misses}
        assert len(evaluation.misses) == 2
        false_positive = by_kind["false positive", "us-russia"]
        assert false_positive.article_id == "a4"
        assert false_positive.explanation[0].startswith("terms: ")
        assert any("Lavrov" in line for line in false_positive.explanation)
        false_negative = by_kind["false negative", "india-defence"]
        assert false_negative.score == 0.0
        assert any("no term found" in line for line in false_negative.explanation)

    def test_near_miss_below_threshold_shows_its_score(self, taxonomy: Taxonomy) -> None:
        one_sentence = LabelledArticle(
            "a5",
            "Budget talks",
            "Officials discussed the budget. Separately, Washington said it would talk to Moscow soon.",
            frozenset({"us-russia"}),
        )
        (miss,) = evaluate([one_sentence], taxonomy).misses
        assert (miss.score, miss.threshold) == (1.0, 2.0)
        assert any("Moscow" in line for line in miss.explanation)

    def test_groups_apart_and_exclusions_are_explained(self, taxonomy: Taxonomy) -> None:
        apart = LabelledArticle(
            "a6",
            "Two capitals",
            "Trump held a rally in Ohio.\nThe Kremlin announced a new budget.\n"
            "Mueller testified about Russia and Trump.",
            frozenset({"us-russia"}),
        )
        (miss,) = evaluate([apart], taxonomy).misses
        assert "every group occurs, but never together in one sentence" in miss.explanation
        assert any(line.startswith("exclusion terms present: Mueller") for line in miss.explanation)

    def test_labels_for_unknown_topics_are_reported(self, taxonomy: Taxonomy) -> None:
        odd = LabelledArticle("a7", "t", "b", frozenset({"weather"}))
        evaluation = evaluate([odd], taxonomy)
        assert evaluation.unknown_labels == {"weather"}
        assert "labels name topics the taxonomy lacks: weather" in render(evaluation)

    def test_report_and_json(self, taxonomy: Taxonomy) -> None:
        evaluation = evaluate([US_RUSSIA, INDIA_MISSED, ARGUABLE], taxonomy)
        text = render(evaluation, max_misses=1)
        assert "topic" in text.splitlines()[2]
        assert "precision" in text
        assert "misclassified: 2" in text
        assert "and 1 more" in text
        data = as_json(evaluation)
        assert data["topics"]["us-russia"]["precision"] == 0.5
        assert data["micro"]["false_negatives"] == 1
        assert {miss["kind"] for miss in data["misses"]} == {"false positive", "false negative"}


class TestCommand:
    def test_prints_the_report_and_writes_json(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        labels = _write(tmp_path / "labels.jsonl", [_record(US_RUSSIA), _record(NAVALNY)])
        report = tmp_path / "report.json"
        assert main(["evaluate-tags", "--labels", str(labels), "--json", str(report)]) == 0
        out = capsys.readouterr().out
        assert "us-russia" in out
        assert "misclassified: 0" in out
        assert orjson.loads(report.read_bytes())["topics"]["us-russia"]["recall"] == 1.0

    def test_thresholds_set_the_exit_code(self, tmp_path: Path) -> None:
        labels = _write(tmp_path / "labels.jsonl", [_record(US_RUSSIA), _record(ARGUABLE)])
        assert main(["evaluate-tags", "--labels", str(labels), "--min-precision", "0.95"]) == 1
        assert main(["evaluate-tags", "--labels", str(labels), "--min-recall", "0.9"]) == 0

    def test_bad_input_is_a_clear_error(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        labels = tmp_path / "labels.jsonl"
        labels.write_text("not json\n")
        assert main(["evaluate-tags", "--labels", str(labels)]) == 2
        assert f"{labels}:1: not JSON" in capsys.readouterr().err
        good = _write(tmp_path / "good.jsonl", [_record(US_RUSSIA)])
        broken = tmp_path / "taxonomy.yaml"
        broken.write_text("version: 1\n")
        assert main(["evaluate-tags", "--labels", str(good), "--taxonomy", str(broken)]) == 2
        assert "quoted string" in capsys.readouterr().err


class TestReloader:
    NEW_TOPIC = "\n".join(
        [
            "",
            "  - id: weather",
            "    description: Storms.",
            "    groups:",
            "      storm: [storm]",
            "      place: [coast]",
            "",
        ]
    )

    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        path = tmp_path / "taxonomy.yaml"
        path.write_text(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"), encoding="utf-8")
        return path

    def test_unchanged_file_is_not_reloaded(self, path: Path) -> None:
        reloader = TaxonomyReloader(path)
        first = reloader.current
        assert not reloader.refresh()
        assert reloader.current is first

    def test_an_edit_comes_into_force(self, path: Path) -> None:
        reloader = TaxonomyReloader(path)
        before = reloader.current.version
        path.write_text(path.read_text(encoding="utf-8") + self.NEW_TOPIC, encoding="utf-8")
        assert reloader.refresh()
        assert reloader.current.version != before
        assert [topic.id for topic in reloader.current.topics][-1] == "weather"

    def test_comment_only_edit_keeps_the_version(self, path: Path) -> None:
        reloader = TaxonomyReloader(path)
        before = reloader.current
        path.write_text("# a note\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
        assert not reloader.refresh()
        assert reloader.current is before

    def test_a_broken_edit_keeps_the_last_good_taxonomy(
        self, path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        reloader = TaxonomyReloader(path)
        good = reloader.current
        path.write_text("version: '9'\ntopics: [\n", encoding="utf-8")
        assert not reloader.refresh()
        assert reloader.current is good
        assert reloader.last_error is not None
        assert "not valid YAML" in reloader.last_error
        assert "cannot be used" in caplog.text
        path.unlink()
        assert not reloader.refresh()
        assert reloader.current is good
        path.write_text(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8") + self.NEW_TOPIC, encoding="utf-8")
        assert reloader.refresh()
        assert reloader.last_error is None

    def test_a_bad_file_at_start_up_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(TaxonomyError):
            TaxonomyReloader(tmp_path / "missing.yaml")
