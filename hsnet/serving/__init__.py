"""The library behind the app: everything that is not page layout or a callback.

- ``models``: ``ModelStore`` loads weights by name in background threads (banner state, failure memory).
- ``probes``: ``ProbeStore`` keeps what a click on a result needs, at model resolution, within a byte budget.
- ``uploads``: checks on uploads, brush layers and ``data:`` URLs from their headers, before decoding.
- ``guards``: those checks wired into Gradio (component wrappers, request size limits) and ``launch_kwargs()``.
- ``queues``: each kind of work in its own Gradio queue, and ``TURNS``: Segment first, Label many between photos.
- ``memory``: resident memory kept near memory in use (glibc arenas, heap trimmed after requests, sessions kept).
- ``files``: the per-process folder for visitors' files, Gradio's cache sweep, downloadable masks.
- ``label_many``: the "Label many" backend (hsnet.labeling's loop), bounded in count (MAX_LABEL_QUERIES) and bytes
  (MAX_LABEL_BYTES).

How app.py uses it (one store of each kind per process, at module level, so that a ZeroGPU
worker sees them; the GPU step receives the weights NAME):

    STORE = ModelStore(default_weights, image_size=...)  # STORE.start(name) in main()
    PROBES = ProbeStore()                              # gr.State holds only request.session_hash
    private_temp_dir()                                 # in main(), before gr.Blocks is built
    segment callback: @TURNS.first; predictor = STORE.predictor(name) (WeightsNotReadyError, one line, at once);
             PROBES.put(request.session_hash, Probe.build(weights, query, images, masks, predictor.image_size))
    explore: @TURNS.first; point_maps(STORE.predictor(probe.weights), PROBES.get(session_key), x, y)
             (ProbeExpiredError, one line: "press Segment again"; x, y in the query's original pixels)
    components: guards.guard_image(gr.Image(...), "query image"), guards.guard_editor(gr.ImageEditor(...),
                f"support {i}"), guards.guard_image(gr.Image(...), f"support {i} mask")
    events: run.click(..., **SEGMENT_QUEUE), label_run.click(..., **LABEL_QUEUE), result.select(..., **EXPLORE_QUEUE)
    gr.Blocks(delete_cache=DELETE_CACHE); demo.queue(**QUEUE); demo.launch(**guards.launch_kwargs(), ...)
    label many: for update in label_many(TURNS.between(segmenter), files, MaskFiles().answer_folder(),
                                         batch_size=LABEL_CHUNK):
                gallery += [(update.overlay, update.name)] (a complete thumbnail file); the last update has
                .archive (the dataset zipped, complete) and .skipped
"""
from .files import DELETE_CACHE, MaskFiles, private_temp_dir
from ..labeling import predictor_segmenter
from .label_many import MAX_LABEL_BYTES, MAX_LABEL_QUERIES, LabelUpdate, label_many
from .models import LoadState, ModelStore, WeightsNotReadyError, load_predictor, public_name
from .probes import PROBE_BUDGET_BYTES, Probe, ProbeExpiredError, ProbeStore, point_maps
from .uploads import MAX_BRUSH_LAYERS, MAX_UPLOAD_BYTES

__all__ = [
    "DELETE_CACHE", "LabelUpdate", "LoadState", "MAX_BRUSH_LAYERS", "MAX_LABEL_BYTES", "MAX_LABEL_QUERIES",
    "MAX_UPLOAD_BYTES", "MaskFiles", "ModelStore",
    "PROBE_BUDGET_BYTES", "Probe", "ProbeExpiredError", "ProbeStore", "WeightsNotReadyError", "load_predictor",
    "label_many", "point_maps", "predictor_segmenter", "private_temp_dir", "public_name",
]
