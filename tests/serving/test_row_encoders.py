"""The client's row encoder (serving/codec.py) and the exporter's (diit_tf/warmup.py) are kept as two copies, one on
each side of the serving boundary (serving imports nothing of diit_tf). Both must write the same Example."""
import pytest
import tensorflow as tf

from diit_tf import warmup
from serving import codec

DTYPES = {"user_id": "string", "item_id": tf.string, "age": "float", "price": tf.float32}


def _expected(user: bytes, item: bytes, age: float, price: float) -> tf.train.Example:
    def text(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def number(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
    return tf.train.Example(features=tf.train.Features(feature={
        "user_id": text(user), "item_id": text(item), "age": number(age), "price": number(price)}))


@pytest.mark.parametrize("row, expected", [
    ({"user_id": "7", "item_id": b"i9", "age": 31, "price": "2.5"}, _expected(b"7", b"i9", 31.0, 2.5)),
    ({"user_id": 12.0, "item_id": 3, "age": 0.5, "price": 0}, _expected(b"12", b"3", 0.5, 0.0)),  # 12.0 -> "12"
    ({"user_id": 12.5, "item_id": "x", "age": -1, "price": 1e3}, _expected(b"12.5", b"x", -1.0, 1000.0)),
])
def test_both_encoders_write_the_hand_built_example(row, expected):
    assert warmup.row_to_example(row, DTYPES) == expected
    assert codec.row_to_example(row, DTYPES) == expected


@pytest.mark.parametrize("row, message", [
    ({"item_id": "i", "age": 1, "price": 1}, "row is missing feature 'user_id'"),
    ({"user_id": "u", "item_id": "i", "age": "old", "price": 1}, "feature 'age' should be a number. Received: 'old'"),
])
def test_both_encoders_name_the_feature(row, message):
    for module in (warmup, codec):
        with pytest.raises(ValueError) as info:
            module.row_to_example(row, DTYPES)
        assert str(info.value).startswith(message)
