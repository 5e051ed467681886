"""The training harness: the steps of a run (`fit`), the fold loop, the learner (how one fold's model is built,
fitted and asked for its outputs: Lightning today), the callbacks, what a run records, and DDP. Imports every
package below it (core, config, competition, track, data, tune)."""
