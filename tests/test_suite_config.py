"""Suites: the shipped ones load, and every kind of bad file gets one line naming file and key."""

from __future__ import annotations

import pytest

from attnprof.errors import AttnprofError
from attnprof.suite.config import available_suites, load_suite

MINIMAL = """
[models]
backbones = ["resnet18"]
variants = ["none", "se"]
input = 64
"""


def write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_suites_are_present_and_valid():
    assert {"imagenet", "detection", "paper-sge", "smoke"} <= set(available_suites())
    for name in available_suites():
        suite = load_suite(name)
        assert suite.name == name
        assert "none" in [v.name for v in suite.variants]


def test_imagenet_suite_is_resnet50_101_and_mobilenet_v2_with_all_eight_modules():
    suite = load_suite("imagenet")
    assert suite.backbones == ("resnet50", "resnet101", "mobilenet_v2")
    by_name = {v.name: v for v in suite.variants}
    # MobileNetV2's widths take 8 SGE groups and 4 SA groups; SK needs a dense 3x3 conv
    assert by_name["sge"].options_for("resnet50") == {}
    assert by_name["sge"].options_for("mobilenet_v2") == {"groups": 8}
    assert by_name["sa"].options_for("mobilenet_v2") == {"groups": 4}
    assert not by_name["sk"].applies_to("mobilenet_v2") and by_name["sk"].applies_to("resnet50")
    assert [v.attention for v in suite.variants] == [
        "none",
        "se",
        "sge",
        "sa",
        "cbam",
        "eca",
        "gc",
        "bam",
        "sk",
    ]
    assert [(s.input_hw, s.head) for s in suite.settings] == [((224, 224), "fc")]


def test_detection_suite_has_pool_and_none_heads_at_800x1333():
    suite = load_suite("detection")
    assert [(s.input_hw, s.head) for s in suite.settings] == [
        ((800, 1333), "pool"),
        ((800, 1333), "none"),
    ]


def test_paper_sge_suite_carries_the_published_table():
    published = {(p.variant, p.params, p.cost, p.convention)
                 for p in load_suite("paper-sge").published}
    assert published == {
        ("none", "25.56 M", "4.122 GMAC", "paper"),
        ("se", "28.09 M", "4.130 GMAC", "paper"),  # the trailing 0 is kept: 3 decimals printed
        ("sk", "26.15 M", "4.185 GMAC", "paper"),
        ("bam", "25.92 M", "4.205 GMAC", "paper"),
        ("cbam", "28.09 M", "4.139 GMAC", "paper"),
        ("sge", "25.56 M", "4.127 GMAC", "paper"),
    }
    row = load_suite("paper-sge").published[1]
    figure = row.cost_figure
    assert (figure.decimals, figure.scale, figure.unit) == (3, "G", "MAC")


def test_a_user_file_with_variant_options_loads(tmp_path):
    path = write(
        tmp_path,
        MINIMAL.replace(
            '"none", "se"]',
            '"none", {name = "sge-g8", attention = "sge", options = {groups = 8}}]',
        ),
    )
    suite = load_suite(str(path))
    assert suite.name == "mine"
    assert suite.variants[1].name == "sge-g8"
    assert suite.variants[1].options == {"groups": 8}
    assert suite.settings[0].input_hw == (64, 64)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[models\nbackbones = 1", "not valid TOML"),
        (MINIMAL.replace('"resnet18"', '"resnet19"'), "models.backbones = 'resnet19' is invalid"),
        (MINIMAL.replace('"none", "se"', '"none", "sx"'), "unknown attention module 'sx'"),
        (MINIMAL.replace('"none", "se"', '"se"'), "includes the 'none' baseline"),
        (MINIMAL.replace("input = 64", "input = [64]"), "models.input = [64] is invalid"),
        (MINIMAL + "[counting]\nconventions = ['flops']\n", "counting.conventions = 'flops'"),
        (
            MINIMAL + "[latency]\nprocesses = 1\nrounds = 2\n",
            "latency: rounds (with processes=1) must be an integer >= 6, got 2",
        ),
        (
            MINIMAL + "[latency]\nprocesses = 3\n",
            "latency: processes must be 1 (this process only), at least 6",
        ),
        (MINIMAL + "[latency]\ndevices = ['tpu']\n", "expected one of cpu, cuda"),
        (MINIMAL + "[latency]\npasses = ['backward']\n",
         "latency.passes = 'backward' is invalid; expected one of inference, train"),
        (MINIMAL + "[latency]\nmodes = ['eager', 'eager']\n",
         "expected a list without repeats of eager, compile"),
        (MINIMAL + "[latency]\nmodes = []\n", "latency.modes = [] is invalid"),
        (MINIMAL + "[latency]\nmodes = ['jit']\n", "expected one of eager, compile"),
        (MINIMAL + "[latency]\noptimizer = 'adam'\n", "expected one of none, sgd"),
        (MINIMAL + "[latency]\ncompile = true\nmodes = ['eager']\n",
         "no 'compile' key beside 'modes'"),
        (MINIMAL + "[extra]\nx = 1\n", "extra = {'x': 1} is invalid; expected an unknown section"),
        (MINIMAL.replace("input = 64", "input = 64\ncolour = 1"), "models.colour = 1 is invalid"),
        (
            MINIMAL.replace(
                '"none", "se"', '"none", {name = "sa", attention = "sa", options = {groups = 64}}'
            ),
            "sa: channels (64) must be divisible by 2*groups (128)",
        ),
    ],
)
def test_bad_suite_files_fail_with_file_key_and_value(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(AttnprofError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "\n" not in message


def test_passes_and_modes_default_to_an_eager_forward_and_parse(tmp_path):
    plain = load_suite(str(write(tmp_path, MINIMAL)))
    assert plain.latency.passes == ("inference",) and plain.latency.modes == ("eager",)
    assert not plain.latency.counts_training
    both = load_suite(str(write(tmp_path, MINIMAL + "[latency]\npasses = ['inference', 'train']"
                                "\nmodes = ['eager', 'compile']\noptimizer = 'sgd'\n")))
    assert both.latency.passes == ("inference", "train") and both.latency.counts_training
    assert both.latency.modes == ("eager", "compile") and both.latency.optimizer == "sgd"
    older = load_suite(str(write(tmp_path, MINIMAL + "[latency]\ncompile = true\n")))
    assert older.latency.modes == ("compile",)


def test_the_train_compile_suite_is_shipped_and_imagenet_stays_an_eager_forward():
    heavy = load_suite("train-compile")
    assert heavy.latency.passes == ("inference", "train")
    assert heavy.latency.modes == ("eager", "compile")
    main = load_suite("imagenet")
    assert main.latency.passes == ("inference",) and main.latency.modes == ("eager",)


def test_the_deploy_suite_times_resnet50_where_it_ships_and_imagenet_decides_its_verdicts():
    deploy = load_suite("deploy")
    assert deploy.backbones == ("resnet50",) and len(deploy.variants) == 9
    assert deploy.latency.modes == ("eager", "onnxruntime", "aoti")
    assert deploy.latency.batch_sizes == (1,) and deploy.latency.devices == ("cpu",)
    main = load_suite("imagenet").latency
    # sequential: processes until every interval is at most 6 points wide, within a budget
    assert main.processes is None and main.replication.target_width == 6.0
    assert main.budget_s == 390.0 and main.replication.threshold == 5.0
    assert main.allocator == "steady"
    # a horizon of 12: the first interval after 6 processes, which the budget affords
    from attnprof.latency.sequential import sequential_design

    assert sequential_design(0.95, main.replication.max_processes).first == 6
    assert not main.attribution  # the deploy suite profiles where the time goes


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('budget = "soon"', 'latency.budget = \'soon\' is invalid; expected a positive number '
                            'of seconds, or a string such as "8 min"'),
        ("budget = -3", "latency.budget = -3 is invalid"),
        ("target_width = 0", "latency.target_width = 0 is invalid"),
        ('allocator = "jemalloc"', "latency.allocator = 'jemalloc' is invalid; expected one of "
                                   "steady, system"),
        ("max_processes = 4", "latency: max_processes=4 is too few for a 95% interval with a "
                              "look after every process; allow at least 6"),
        ('attribution = "yes"', "latency.attribution = 'yes' is invalid"),
        ('modes = ["tensorrt"]', "latency.modes = 'tensorrt' is invalid; expected one of eager, "
                                 "compile, onnxruntime, aoti, openvino"),
    ],
)
def test_replication_keys_are_checked(tmp_path, table, message):
    path = write(tmp_path, f"""
[models]
backbones = ["resnet18"]
variants = ["none", "se"]
input = 64
[latency]
{table}
""")
    with pytest.raises(AttnprofError) as caught:
        load_suite(path)
    assert message in str(caught.value)


def test_budgets_read_as_durations(tmp_path):
    for given, seconds in (('"8 min"', 480.0), ('"90 s"', 90.0), ("120", 120.0),
                           ('"1.5 h"', 5400.0)):
        path = write(tmp_path, f"""
[models]
backbones = ["resnet18"]
variants = ["none", "se"]
input = 64
[latency]
budget = {given}
""")
        assert load_suite(path).latency.budget_s == seconds


def test_unknown_suite_name_lists_the_shipped_ones():
    with pytest.raises(AttnprofError,
                       match="unknown suite 'imagenett'; valid suites: compile-check, deploy"):
        load_suite("imagenett")


def test_missing_suite_path_is_reported(tmp_path):
    with pytest.raises(AttnprofError, match="does not exist"):
        load_suite(str(tmp_path / "nope.toml"))
