pub struct RunDir;
