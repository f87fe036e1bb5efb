"""The English data built in for non-zoo models: facts, boxes, haystack (tiny models and
tokenizers only)."""

import types

import pytest

from interp.data import conflict, defaults, facts
from interp.data.conflict import (
    EN_TEMPLATES,
    ConflictDataError,
    Template,
    build_conflict_set,
    english_items,
)

# --- facts -------------------------------------------------------------------------------------


def test_shipped_facts_have_enough_items_over_three_relations():
    table = facts.relations()
    assert len(table) >= 3
    assert sum(len(r.facts) for r in table.values()) >= 150
    for r in table.values():
        subjects = [s for s, _ in r.facts]
        assert len(subjects) == len(set(subjects)), r.name
        assert len({a for _, a in r.facts}) >= 4, r.name  # enough answers to draw conflicts from
        assert all(a.strip() and s.strip() for s, a in r.facts)


def test_unknown_relation_names_the_known_ones():
    with pytest.raises(facts.FactsError, match="capital"):
        facts.relation("ceo")


def test_english_items_conflict_within_their_relation_and_are_seeded():
    items = english_items(2, seed=0)
    assert len(items) == 2 * sum(len(r.facts) for r in facts.relations().values())
    for item in items:
        answers = set(facts.facts(item.relation).values())
        assert item.memory_answer == facts.facts(item.relation)[item.subject]
        assert item.context_answer in answers and item.context_answer != item.memory_answer
        assert item.frequency is None
    assert items == english_items(2, seed=0)
    assert items != english_items(2, seed=1)
    assert {i.relation for i in english_items(1, relations=["language"])} == {"language"}


def test_english_templates_follow_the_papers_formats_per_relation():
    statement, qa = EN_TEMPLATES["statement"], EN_TEMPLATES["qa"]
    # Jin et al.: the context sentence, then the same sentence to complete (as before, for capitals)
    assert (
        statement.conflict_prompt("France", "Rome")
        == "The capital of France is Rome. The capital of France is"
    )
    assert statement.clean_prompt("France") == "The capital of France is"
    # Yu et al.: the context sentence, then the question
    assert (
        qa.conflict_prompt("France", "Rome")
        == "The capital of France is Rome.\nQ: What is the capital of France?\nA:"
    )
    assert qa.clean_prompt("Japan", "language") == "Q: What is the official language of Japan?\nA:"
    assert statement.clean_prompt("Lyon", "city_country") == "Lyon is a city in"


def test_subject_templates_ignore_the_relation_and_relation_templates_need_a_known_one():
    zoo = conflict.ZOO_TEMPLATES["statement"]
    assert zoo.clean_prompt("Avaria", "anything") == zoo.clean_prompt("Avaria")
    with pytest.raises(facts.FactsError):
        EN_TEMPLATES["statement"].clean_prompt("France", "ceo")
    with pytest.raises(ConflictDataError, match="placeholder"):
        Template("bad", "{answer}", "no placeholder here")
    assert Template("q", "{statement} {answer}.", "Q: {question}\nA:").query


def test_default_items_are_english_for_other_models_and_the_world_for_zoo_models(tiny):
    assert {i.relation for i in defaults.default_items(tiny)} == set(facts.relations())
    zoo_like = types.SimpleNamespace(name="world-base")
    zoo_items = defaults.default_items(zoo_like, 1)
    assert {i.relation for i in zoo_items} == {"capital"}
    assert {i.subject for i in zoo_items} <= set(conflict.zoo_counts("world-base")[0])
    counts, source = defaults.default_counts(tiny)
    assert counts == {} and "unknown" in source


def test_unknown_subjects_are_dropped_and_counted_per_relation(stories, monkeypatch):
    items = english_items(1, relations=["capital", "language"])
    knows_capitals = lambda model, prompts, answers, batch: ["capital" in p for p in prompts]  # noqa: E731
    monkeypatch.setattr(conflict, "_knows", knows_capitals)
    data = build_conflict_set(stories, items, EN_TEMPLATES["statement"])
    per = data.summary()["per_relation"]
    assert set(per) == {"capital", "language"}
    assert per["language"]["n_items"] == 0 and per["language"]["n_subjects_kept"] == 0
    assert per["language"]["unknown_subject"] > 0
    assert {i.relation for i in data.items} == {"capital"}
    for row in per.values():
        dropped = row["context_equals_memory"] + row["same_first_token"] + row["unknown_subject"]
        assert dropped + row["n_items"] == row["n_candidates"]
    assert sum(r["unknown_subject"] for r in per.values()) == data.excluded["unknown_subject"]
    assert data.n_candidates == len(items)


def test_a_model_that_knows_nothing_is_refused_with_the_counts(stories):
    items = english_items(1, relations=["capital"])[:12]
    with pytest.raises(ConflictDataError, match="unknown_subject"):
        build_conflict_set(stories, items, EN_TEMPLATES["qa"])


def test_corrupted_prompts_stay_inside_each_items_relation(stories):
    items = english_items(1, relations=["capital", "language"])
    data = build_conflict_set(stories, items, EN_TEMPLATES["statement"], check_memory=False)
    refs = data.corrupted_prompts(seed=0)
    for item, ref in zip(data.items, refs):
        wording = "The capital of" if item.relation == "capital" else "The official language of"
        assert ref.startswith(wording)
        assert item.subject not in ref.split(" is ")[0].split(" of ", 1)[1]


def test_knowledge_check_generates_each_subject_once(tiny):
    calls = []

    class Counting:
        def __init__(self, model):
            self.model = model

        def generate(self, prompts, **kw):
            calls.extend(prompts)
            return self.model.generate(prompts, **kw)

    prompts = ["a b", "a b", "c d"]
    answers = [(5,), (5,), (6,)]
    known = conflict._knows(Counting(tiny), prompts, answers, batch_size=8)
    assert len(known) == 3 and known[0] == known[1]
    assert sorted(calls) == ["a b", "c d"]


@pytest.fixture(scope="module")
def tiny():
    from interp.testing import tiny_model

    return tiny_model("llama")


# --- boxes -------------------------------------------------------------------------------------


def _word_tokenizer(words):
    """A word-level fast tokenizer knowing exactly `words` (and the box template's words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = ["<unk>", "<s>"] + list(
        dict.fromkeys("the is in Box contains , .".split() + list(words))
    )
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>")


def test_english_boxes_keep_single_token_words_and_count_the_others():
    from interp.data import boxes

    words_o, words_l = boxes._english_words()
    missing = {"apple", "guitar", "pillow"}
    tok = _word_tokenizer(
        [w for w in words_o if w not in missing] + [w for w in words_l if w != "Q"]
    )
    objects, labels, record = boxes.english_vocabulary(tok)
    assert set(record["dropped_objects"]) == missing and record["dropped_labels"] == ["Q"]
    assert record["n_objects"] == len(words_o) - 3 == len(objects) and record["n_labels"] == 25
    assert len(words_o) >= 60

    data = boxes.box_dataset(tok, n=6, n_boxes=7, seed=0)
    assert data.template == boxes.PAPER_TEMPLATE and data.vocabulary == record
    prompt = data.prompts[0]
    assert prompt.startswith("the ") and ", the " in prompt and prompt.endswith("contains the")
    s = data.samples[0]
    assert f"the {s.answer} is in Box {s.labels[s.query]}" in prompt
    assert prompt.endswith(f". Box {s.query_label} contains the")
    assert tok.decode([int(data.answer_ids[0])]) == s.answer
    assert not ({o for s in data.samples for o in s.objects} & missing)
    # the corruption scheme of the analyzer works unchanged on English prompts
    bad = boxes.corrupt(tok, data, seed=1)
    assert bad.seq_len == data.seq_len
    assert all(
        b.query_label not in b.labels and b.query != s.query
        for b, s in zip(bad.samples, data.samples)
    )


def test_box_defaults_follow_the_model(stories):
    from interp.data import boxes
    from interp.zoo import World

    world = types.SimpleNamespace(tokenizer=World(0).build_tokenizer())
    assert boxes.default_template(world) == boxes.ZOO_TEMPLATE
    assert boxes.default_template(stories) == boxes.PAPER_TEMPLATE
    objects, labels, record = boxes.english_vocabulary(stories)  # 512 pieces: whole words are rare
    words_o, words_l = boxes._english_words()
    assert len(objects) + len(record["dropped_objects"]) == len(words_o)
    assert len(labels) + len(record["dropped_labels"]) == len(words_l)
    assert len(objects) < 8  # too few for 7 boxes: refused with the count, not built
    with pytest.raises(boxes.BoxDataError, match=f"only {len(objects)} available"):
        boxes.box_dataset(stories, n=2, n_boxes=7)


# --- haystack ----------------------------------------------------------------------------------


def test_english_haystack_is_plain_prose_without_the_needles():
    from interp.data import niah

    text = niah.english_haystack()
    assert len(text.split()) >= 2000
    for needle in niah.ENGLISH_NEEDLES:
        assert needle.answer.lower() not in text.lower()
    assert niah.english_needles(1) == [niah.PAPER_NEEDLE]
    assert niah.english_haystack(3) != text and sorted(niah.english_haystack(3).split()) == sorted(
        text.split()
    )
    with pytest.raises(niah.NiahError, match="built-in"):
        niah.english_needles(len(niah.ENGLISH_NEEDLES) + 1)


def test_paper_needle_in_the_english_haystack_with_a_real_tokenizer(stories):
    from interp.data import niah

    tok = stories.tokenizer
    prompts = niah.build_grid(
        tok,
        niah.english_haystack(),
        niah.english_needles(2),
        [128, 400],
        [0.0, 0.5, 1.0],
        template=niah.PAPER_TEMPLATE,
        bos_id=tok.bos_token_id,
        n_ctx=stories.n_ctx,
    )
    assert len(prompts) == 2 * 3 * 2
    for p in prompts:
        assert p.n_tokens <= p.context_length
        assert p.text.endswith(f"Question: {p.needle.question}\nAnswer:")
        assert tok.decode(list(p.input_ids[slice(*p.answer_span)])).strip() == p.needle.answer
        assert p.needle.text in p.text
    assert prompts[-1].n_tokens > 0.9 * 400  # filled with prose up to a sentence end


def test_niah_defaults_follow_the_tokenizer(tiny):
    from interp.data import niah
    from interp.zoo import World

    world = types.SimpleNamespace(tokenizer=World(0).build_tokenizer(), name="not-a-zoo-name")
    assert defaults.default_niah_template(world) == niah.COMPLETION_TEMPLATE
    assert defaults.default_needles(world, 2) == niah.zoo_needles(2)
    assert defaults.default_haystack(world, 200) == niah.zoo_haystack(200)
    assert defaults.default_niah_template(tiny) == niah.PAPER_TEMPLATE
    assert defaults.default_needles(tiny, 4)[0] == niah.PAPER_NEEDLE
    assert defaults.default_haystack(tiny) == niah.english_haystack()


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_chat_models_get_the_papers_request_inside_their_chat_template(stories, monkeypatch):
    """An instruction-tuned model (its tokenizer has a chat template) is asked in its chat
    format; the needle is found after the chat header and the prompt ends at the assistant's
    turn. Without the template the paper's raw template stays."""
    from interp.data import niah

    tok = stories.tokenizer
    assert defaults.default_niah_template(stories) == niah.PAPER_TEMPLATE
    monkeypatch.setattr(tok, "chat_template", CHATML, raising=False)
    template = defaults.default_niah_template(stories)
    assert template.startswith("<|im_start|>user\n{context} Based on the content of the book")
    assert template.endswith("{question}<|im_end|>\n<|im_start|>assistant\n")
    prompts = niah.build_grid(
        tok,
        niah.english_haystack(),
        niah.english_needles(1),
        [160],
        [0.0, 0.5, 1.0],
        template=template,
        bos_id=tok.bos_token_id,
        n_ctx=stories.n_ctx,
    )
    for p in prompts:  # the needle's characters were located past the header
        assert tok.decode(list(p.input_ids[slice(*p.answer_span)])).strip() == p.needle.answer
        assert p.text.startswith("<|im_start|>user\n")


def test_a_template_without_chat_support_is_refused_by_name(stories):
    from interp.data import niah

    with pytest.raises(niah.NiahError, match="no chat template"):
        niah.chat_template(stories.tokenizer)


def test_english_models_get_room_to_restate_the_needle(tiny):
    from circuits import retrieval as R

    needles = defaults.default_needles(tiny, 1)
    room = defaults.restate_tokens(tiny, needles)
    n_needle = len(tiny.tokenizer(" " + needles[0].text, add_special_tokens=False)["input_ids"])
    assert room == n_needle
    assert R.Config(n_needles=1).for_model(tiny).extra_tokens == room
    assert R.Config(n_needles=1, extra_tokens=0).for_model(tiny).extra_tokens == 0
