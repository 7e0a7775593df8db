import pytest

from harpoon.catalog import load_catalog, parse_catalog
from harpoon.errors import StepInputError
from harpoon.models import AllocateInput, ProcessRequest, parse_step_input


def test_catalog_has_the_seed_figures():
    catalog = load_catalog()
    gemma, qwen = catalog.get("gemma-270m"), catalog.get("qwen-30b")
    assert (gemma.min_tflops, gemma.vram_mb, gemma.max_tokens) == (5.0, 2048, 256)
    assert (qwen.min_tflops, qwen.vram_mb, qwen.max_tokens) == (30.0, 20480, 1024)
    assert catalog.for_tier("simple") is gemma and catalog.for_tier("complex") is qwen
    assert qwen.requirements() == {"min_tflops": 30.0, "min_vram_mb": 20480, "max_vram_mb": 20480}


def test_catalog_rejects_a_fallback_to_an_unknown_model():
    data = {"default_simple": "a", "default_complex": "a",
            "models": [{"id": "a", "tier": "simple", "min_tflops": 1, "vram_mb": 1, "max_tokens": 1, "price_per_gpu_second": 0.1,
                        "fallback": "zzz"}]}
    with pytest.raises(KeyError, match="zzz"):
        parse_catalog(data)


def test_unknown_model_error_names_known_models():
    with pytest.raises(KeyError, match="gemma-270m"):
        load_catalog().get("nope")


@pytest.mark.parametrize("body", [{"text": 5}, {"text": ["a"]}, {"text": "hi", "max_tokens": "10"},
                                  {"text": "hi", "max_tokens": True}, {"text": "hi", "max_tokens": 0},
                                  {"text": "hi", "max_tokens": 5000}, {"text": "   "}, {"text": ""}, {},
                                  {"text": "hi", "extra": 1}])
def test_process_request_rejects_bad_bodies(body):
    with pytest.raises(ValueError):
        ProcessRequest.model_validate(body)


def test_step_input_errors_are_named_for_the_state_machine():
    with pytest.raises(StepInputError) as info:
        parse_step_input(AllocateInput, {"request_id": "r"})
    assert info.value.details["problems"][0]["field"] == "model"


def test_every_catalog_entry_carries_its_price_and_tier():
    for spec in load_catalog().models.values():
        assert spec.price_per_gpu_second > 0 and spec.tier in ("simple", "complex")
    assert load_catalog().largest.id == "qwen-30b"


@pytest.mark.parametrize("tflops, vram, expected", [
    (0, 0, "gemma-270m"), (5, 2048, "gemma-270m"), (5.1, 0, "qwen-30b"), (0, 2049, "qwen-30b"),
    (30, 20480, "qwen-30b"), (30.5, 0, None), (0, 20481, None),
])
def test_requirements_route_to_the_smallest_model_that_meets_them(tflops, vram, expected):
    spec = load_catalog().smallest_meeting(min_tflops=tflops, min_vram_mb=vram)
    assert (spec.id if spec else None) == expected
