from __future__ import annotations

from leanvla.models.tokenizer import BOS, PAD, InstructionTokenizer


def test_ids_are_stable_and_case_insensitive():
    tok = InstructionTokenizer(vocab_size=4096, max_length=8)
    assert tok.encode("Close the drawer") == tok.encode("close  the drawer!")
    assert tok.encode("close the drawer")[0] == BOS
    assert len(tok.encode("a b c d e f g h i j k")) == 8
    # CRC-32 hashing: the same word always gets the same id (no vocabulary file to lose)
    assert tok.token_id("drawer") == InstructionTokenizer(4096).token_id("drawer")


def test_batch_pads_to_the_longest_text():
    ids, mask = InstructionTokenizer().batch(["reach the goal", "open the door now please"])
    assert ids.shape == (2, 6)
    assert mask.sum(1).tolist() == [4, 6]
    assert ids[0, 4:].tolist() == [PAD, PAD]


def test_words_of_any_script_are_read_each_chinese_or_japanese_character_a_word():
    tok = InstructionTokenizer(vocab_size=4096, max_length=16)
    ids = tok.token_id
    assert tok.encode("把方块放进盒子") == [BOS] + [ids(c) for c in "把方块放进盒子"]
    assert tok.encode("ボタンを押す") == [BOS] + [ids(c) for c in "ボタンを押す"]
    assert tok.encode("Greif den Würfel 🧊") == [BOS, ids("greif"), ids("den"), ids("würfel")]
    assert tok.encode("pick 方块, now") == [BOS, ids("pick"), ids("方"), ids("块"), ids("now")]
    # NFKC: a full-width letter is its ASCII self, a decomposed umlaut the composed one
    assert tok.encode("ＰＩＣＫ Wu\u0308rfel") == [BOS, ids("pick"), ids("würfel")]
    assert tok.encode("drawer_close") == [BOS, ids("drawer"), ids("close")]


def test_every_meta_world_instruction_encodes_as_checkpoints_before_unicode_words_did():
    from leanvla.data.metaworld_tasks import INSTRUCTIONS

    unicode, ascii = InstructionTokenizer(words="unicode"), InstructionTokenizer(words="ascii")
    for instruction in INSTRUCTIONS.values():
        assert unicode.encode(instruction) == ascii.encode(instruction), instruction
    assert ascii.encode("把方块放进盒子") == [BOS]  # what the ASCII words did to other scripts
    assert ascii.encode("Würfel") == [BOS, ascii.token_id("w"), ascii.token_id("rfel")]


def test_texts_that_encode_alike_are_grouped():
    tok = InstructionTokenizer(max_length=4)
    texts = ["Open the door!", "open the door", "close it", "open THE door", "a b c d", "a b c e"]
    assert tok.indistinct(texts + ["close it"]) == [
        ["Open the door!", "open the door", "open THE door"],
        ["a b c d", "a b c e"],  # the fourth word is past max_length
    ]
