"""The toy track's figures, one module per concept. Each module prepares a figure's data once (a ``*_data``
function returning the arrays) and draws it twice over that data: ``*_mpl`` returns a matplotlib ``Figure``
(files, the CLI, README images), ``*_plotly`` a ``plotly.graph_objects.Figure`` (the app). No function shows
its figure.

- :mod:`~toydiff.toy.figures.samples`: samples against the truth, reverse trajectories (1-D and 2-D);
- :mod:`~toydiff.toy.figures.training`: loss curves, the learned ε̂ against the exact ε*, −ε fields;
- :mod:`~toydiff.toy.figures.schedules`: β / ᾱ / SNR curves, the time embedding, the forward density;
- :mod:`~toydiff.toy.figures.sampling`: distance to the truth against cost (convergence);
- :mod:`~toydiff.toy.figures.motion`: animations of the forward and reverse processes, the denoising strip;
- :mod:`~toydiff.toy.figures.guidance`: guided samples over the tilted target, CFG curves, the class posterior;
- :mod:`~toydiff.toy.figures.flow`: flow vs diffusion paths;
- :mod:`~toydiff.toy.figures.likelihood`: PF-ODE log-likelihood against the exact one, the ELBO by step;
- :mod:`~toydiff.toy.figures.memorisation`: copies of training points, the copy rate against n;
- :mod:`~toydiff.toy.figures.few_step`: few-step methods against the exact flow map (one-jump error against t,
  the one-jump cloud coloured by the error);
- :mod:`~toydiff.toy.figures.steps`: sampling levels on the log-SNR axis beside their pathwise errors (the optimised
  grid of :mod:`toydiff.sampling.optimal_steps` beside the fixed spacings);
- :mod:`~toydiff.toy.figures.base` (colours, extents, density grids) and :mod:`~toydiff.toy.figures.plotly_kit`
  (Plotly traces, the frame animator, :func:`~toydiff.toy.figures.plotly_kit.log_axis` for every log axis and
  :func:`~toydiff.toy.figures.plotly_kit.plane_axes` for every panel of points in a plane) are what the families
  share;
- :mod:`~toydiff.toy.figures.lint` checks a drawn figure (text inside the canvas, no empty panel, equal aspect,
  readable log ticks) and :mod:`~toydiff.toy.figures.gallery` draws every figure from small synthetic inputs for
  those checks (tests/test_figure_checks.py, ``bench/figure_gallery.py``).

Plotly is an optional dependency (the ``app`` extra): every module imports it inside its ``*_plotly``
functions only, except :mod:`~toydiff.toy.figures.plotly_kit`, which only those functions import.
"""
