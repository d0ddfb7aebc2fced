#!/usr/bin/env node
// the installed command: npm links this file at install time, before the build makes dist/
require('../dist/main.js');
