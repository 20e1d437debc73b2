#!/bin/sh
echo pre
