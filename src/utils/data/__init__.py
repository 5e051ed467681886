"""The data stages: the manifest a stage writes, CV folds (scikit-learn splitters by config), the features
contract a model reads, and the runner every dataset/feature folder goes through. Imports src.utils.core, config,
competition and track."""
